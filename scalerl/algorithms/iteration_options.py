"""RLlib's per-iteration options applied in `Algorithm.train()` / `evaluate()`:
`min_time_s_per_iteration`, `evaluation_duration="auto"` and `custom_evaluation_function`."""

from __future__ import annotations

import time
from typing import Any

from scalerl.utils.errors import ConfigError


def run_training_steps(algo: Any) -> dict[str, Any]:
    """One `training_step()`, repeated until `min_time_s_per_iteration` seconds have
    passed (if set); returns the last step's results (the sampling counters of the
    iteration add up over all steps)."""
    start = time.perf_counter()
    result = algo.training_step()
    min_time = algo.config.min_time_s_per_iteration
    while min_time and time.perf_counter() - start < min_time:
        result = algo.training_step()
    return result


def evaluation_units(config: Any) -> tuple[int | None, int | None]:
    """(episodes, timesteps) to evaluate: `evaluation_duration` in its unit; "auto": one
    episode (or `rollout_fragment_length` timesteps) per evaluation env."""
    duration = config.evaluation_duration
    if duration == "auto":
        envs = max(1, config.evaluation_num_env_runners) * config.num_envs_per_env_runner
        duration = (
            envs
            if config.evaluation_duration_unit == "episodes"
            else envs * max(1, config.get_rollout_fragment_length())
        )
    if config.evaluation_duration_unit == "episodes":
        return duration, None
    return None, duration


def run_custom_evaluation(algo: Any, eval_env_runner_group: Any) -> dict[str, Any]:
    """Call `custom_evaluation_function(algorithm, eval_env_runner_group)` (RLlib's
    new-stack signature) and return its results dict, checked as RLlib checks it."""
    fn = algo.config.custom_evaluation_function
    out = fn(algo, eval_env_runner_group)
    if not (isinstance(out, tuple) and len(out) == 3):
        raise ConfigError(
            "`custom_evaluation_function` must return (results dict, env_steps, agent_steps), "
            f"got {out!r}."
        )
    results, env_steps, agent_steps = out
    if not isinstance(results, dict):
        raise ConfigError(
            f"`custom_evaluation_function` must return a dict first, got {results!r}."
        )
    if not (isinstance(env_steps, int) and isinstance(agent_steps, int)):
        raise ConfigError(
            "`custom_evaluation_function` must return int env_steps and agent_steps, got "
            f"{env_steps!r}, {agent_steps!r}."
        )
    return results
