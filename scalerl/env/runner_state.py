"""An EnvRunner's sampling state, for checkpoints: resume where a run left off.

The state is JSON-able: the action-sampling RNG (`rng`), each env's own RNG where it has
one (Gymnasium's `env.unwrapped.np_random`), the multi-agent episode counter, and the
worker index it belongs to. Episodes in progress are not stored (an env's simulator state
is not generally readable): after `set_state` the runner starts new episodes, resetting
its envs *without* their initial seeds, so they continue from the restored RNGs instead
of replaying the first episodes. A run restored at iteration k therefore continues
exactly as a straight run whose episodes were restarted at iteration k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.utils.errors import CheckpointError


def _env_rng(env: Any) -> np.random.Generator | None:
    base = getattr(env, "unwrapped", env)
    rng = getattr(base, "_np_random", None)
    return rng if isinstance(rng, np.random.Generator) else None


def get_runner_state(runner: Any) -> dict[str, Any]:
    """The runner's JSON-able sampling state."""
    env_rngs = []
    for env in runner.envs:
        rng = _env_rng(env)
        env_rngs.append(None if rng is None else rng.bit_generator.state)
    state = {
        "worker_index": runner.worker_index,
        "rng": runner.rng.bit_generator.state,
        "env_rngs": env_rngs,
    }
    if hasattr(runner, "_episodes"):  # multi-agent: episode ids seen by policy_mapping_fn
        state["num_episodes"] = runner._episodes
    return state


def set_runner_state(runner: Any, state: dict[str, Any]) -> None:
    """Restore `get_runner_state`'s result; the next `sample()` starts new episodes."""
    try:
        runner.rng.bit_generator.state = state["rng"]
        if len(state["env_rngs"]) != len(runner.envs):
            raise ValueError(
                f"{len(state['env_rngs'])} envs stored, this runner has {len(runner.envs)}"
            )
        for env, env_state in zip(runner.envs, state["env_rngs"]):
            base = getattr(env, "unwrapped", env)
            if env_state is None:
                continue
            rng = _env_rng(env)
            if rng is None:
                rng = base._np_random = np.random.default_rng()
            rng.bit_generator.state = env_state
        if "num_episodes" in state and hasattr(runner, "_episodes"):
            runner._episodes = int(state["num_episodes"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"EnvRunner state does not fit this runner: {e}") from None
    runner.obs = None  # episodes in progress restart ...
    runner._env_seeds = [None] * len(runner.envs)  # ... from the restored env RNGs
