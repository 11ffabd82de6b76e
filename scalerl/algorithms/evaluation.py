"""`Algorithm.evaluate()`'s work: the evaluation EnvRunners, their episodes and results,
with RLlib's `evaluation_duration="auto"` and `custom_evaluation_function`."""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.multi_agent import multi_agent_means
from scalerl.callbacks import MetricsLogger
from scalerl.callbacks.runner_config import env_runner_config, merge_metrics
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.env.env_runner_group import EnvRunnerGroup
from scalerl.env.multi_agent_env_runner import MultiAgentEnvRunner
from scalerl.env.registry import get_env_creator
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import EpisodeStats, KeyedReturns


def run_evaluation(algo: Any) -> dict[str, Any]:
    """Evaluate `algo`'s current weights: {"env_runners": {...}, "env_runner_group": {...}}
    (or what `custom_evaluation_function` returns). Builds the evaluation EnvRunners on
    first use (`evaluation_config` overrides the training config there)."""
    cfg = algo.config
    overrides = dict(cfg.evaluation_config or {})
    if algo.eval_env_runner_group is None:
        algo.eval_env_runner_group = evaluation_runner_group(algo, overrides)
    group = algo.eval_env_runner_group
    group.sync_weights(algo.runner_weights(), obs_filter=algo.obs_filter)
    if cfg.custom_evaluation_function is not None:
        return run_custom_evaluation(algo, group)
    episodes, steps = evaluation_units(cfg)
    parts = group.sample_episodes(episodes, steps, explore=bool(overrides.get("explore", False)))
    stats = EpisodeStats(window=10**9)
    agents, modules = KeyedReturns(10**9), KeyedReturns(10**9)
    logged = MetricsLogger()  # what the runners' callbacks logged in this evaluation
    for m in parts:
        stats.add(m["episode_returns"], m["episode_lens"])
        agents.add(m.get("agent_episode_returns", {}))
        modules.add(m.get("module_episode_returns", {}))
        logged.merge(m.get("metrics_logger", []))
    env_runners = {
        **stats.summary(),
        **(multi_agent_means(agents, modules) if cfg.is_multi_agent else {}),
        "num_episodes": len(stats.returns),
        "num_env_steps_sampled": sum(m["num_env_steps"] for m in parts),
        "num_sub_env_restarts": sum(m.get("num_sub_env_restarts", 0) for m in parts),
        "episode_returns": list(stats.returns),
    }
    merge_metrics(env_runners, logged.reduce())
    return {"env_runners": env_runners, "env_runner_group": group.metrics()}


def evaluation_runner_group(algo: Any, overrides: dict[str, Any]) -> EnvRunnerGroup:
    """The evaluation EnvRunners: the training config with `evaluation_config` on top,
    `evaluation_num_env_runners` of them, reporting restarts to `algo`'s callbacks."""
    cfg = algo.config
    num_eval = cfg.evaluation_num_env_runners
    eval_cfg = env_runner_config(cfg, num_eval).update_from_dict(overrides)
    eval_cfg.observation_filter = cfg.observation_filter  # the module's input
    group = EnvRunnerGroup(
        eval_cfg,
        get_env_creator(eval_cfg.env),
        algo.module_spec,
        num_eval,
        MultiAgentEnvRunner if cfg.is_multi_agent else SingleAgentEnvRunner,
    )
    group.on_recreated = algo._env_runners_recreated
    return group


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
