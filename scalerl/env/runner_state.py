"""An EnvRunner's sampling state, for checkpoints: resume where a run left off.

The state is JSON-able: the action-sampling RNG (`rng`), each env's own RNG where it has
one (Gymnasium's `env.unwrapped.np_random`), the process's torch RNG (modules that sample
with torch), the multi-agent episode counter, and the worker index it belongs to.
Episodes in progress are not stored (an env's simulator state is not generally
readable): after `set_state` the runner starts new episodes, resetting
its envs *without* their initial seeds, so they continue from the restored RNGs instead
of replaying the first episodes. A run restored at iteration k therefore continues
exactly as a straight run whose episodes were restarted at iteration k.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import torch

from scalerl.utils.errors import CheckpointError


def get_torch_rng() -> str:
    """This process's torch CPU RNG state, as base64 text."""
    return base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")


def set_torch_rng(state: str) -> None:
    """Restore this process's torch CPU RNG from the base64 text `get_torch_rng` returned."""
    raw = np.frombuffer(base64.b64decode(state.encode("ascii")), dtype=np.uint8)
    torch.set_rng_state(torch.from_numpy(raw.copy()))


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
        "torch_rng": get_torch_rng(),  # modules that sample with torch
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
        seeds = list(runner._env_seeds)
        for i, (env, env_state) in enumerate(zip(runner.envs, state["env_rngs"])):
            if env_state is None:  # never reset (or no RNG): it starts from its seed
                continue
            rng = _env_rng(env)
            if rng is None:
                base = getattr(env, "unwrapped", env)
                rng = base._np_random = np.random.default_rng()
            rng.bit_generator.state = env_state
            seeds[i] = None  # its next reset continues from the restored RNG
        if "torch_rng" in state:
            set_torch_rng(state["torch_rng"])
        if "num_episodes" in state and hasattr(runner, "_episodes"):
            runner._episodes = int(state["num_episodes"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"EnvRunner state does not fit this runner: {e}") from None
    runner.obs = None  # episodes in progress restart, from the restored env RNGs
    runner._env_seeds = seeds
