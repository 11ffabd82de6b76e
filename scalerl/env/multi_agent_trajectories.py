"""The agents' trajectories of a multi-agent fragment, and how they become one [M, 1]
column per module (see `multi_agent_env_runner`'s module doc for the layout)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.core.rl_module import Columns
from scalerl.utils import nested


class Trajectory:
    """The steps one agent ended in this fragment, in one episode (one module)."""

    __slots__ = (
        "module",
        "obs",
        "actions",
        "dist_inputs",
        "rewards",
        "last_next_obs",
        "last_raw_obs",
        "terminated",
        "memory",
        "env",
        "agent",
        "steps",
    )

    def __init__(self, module: str, env: int, agent: Any, memory: Any = None) -> None:
        self.module = module
        self.memory = memory  # TrajectoryMemory of a stateful module, else None
        self.env, self.agent = env, agent
        self.steps: list = []  # the episode step at which each obs was returned
        self.obs: list = []  # as the module saw them (filtered)
        self.actions: list = []
        self.dist_inputs: list = []
        self.rewards: list[float] = []
        self.last_next_obs: Any = None  # unfiltered
        self.last_raw_obs: Any = None  # the last step's observation, unfiltered
        self.terminated = False


def lay_end_to_end(mid: str, trajs: list[Trajectory], space: gym.Space) -> tuple[dict, list]:
    """Module `mid`'s trajectories as one [M, 1] column: every trajectory's last row is
    terminated or truncated, a truncated one with its agent's next observation in
    `trunc_obs`. Returns (the fragment, the unfiltered `trunc_obs` rows); `bootstrap_obs`
    and `trunc_obs` in the fragment are unfiltered too."""
    obs, actions, dist_inputs, rewards, terms, truncs = [], [], [], [], [], []
    trunc_index, trunc_obs = [], []
    for traj in trajs:
        obs += traj.obs
        actions += traj.actions
        dist_inputs += traj.dist_inputs
        rewards += traj.rewards
        k = len(traj.rewards)
        terms += [False] * (k - 1) + [traj.terminated]
        truncs += [False] * (k - 1) + [not traj.terminated]
        if not traj.terminated:
            trunc_index.append((len(rewards) - 1, 0))
            trunc_obs.append(traj.last_next_obs)
    if any(d is None for d in dist_inputs):
        raise KeyError(
            f"Module `{mid}`'s forward_exploration returned no "
            f"`{Columns.ACTION_DIST_INPUTS}`: training needs them."
        )

    def column(x: Any) -> Any:
        return nested.map_structure(lambda a: a[:, None], x)

    last_obs = stack_as(space, [trajs[-1].last_next_obs])
    fragment = {
        Columns.OBS: column(stack_as(space, obs)),
        Columns.ACTIONS: column(nested.stack(actions)),
        Columns.REWARDS: np.asarray(rewards, dtype=np.float32)[:, None],
        Columns.TERMINATEDS: np.asarray(terms)[:, None],
        Columns.TRUNCATEDS: np.asarray(truncs)[:, None],
        Columns.ACTION_DIST_INPUTS: np.stack(dist_inputs).astype(np.float32)[:, None],
        # Every trajectory ends in a termination or a cut with its next obs in
        # `trunc_obs`, so the bootstrap obs is never used; it keeps the layout.
        Columns.BOOTSTRAP_OBS: last_obs,
        Columns.TRUNC_INDEX: np.array(trunc_index, dtype=np.int64).reshape(-1, 2),
        Columns.TRUNC_OBS: stack_as(space, trunc_obs)
        if trunc_obs
        else nested.map_structure(lambda x: x[:0], last_obs),
    }
    return fragment, trunc_obs


def rows_of(batch: Any, n: int) -> list:
    """The n rows of a batch (nested structures row by row; a plain array is iterated)."""
    if isinstance(batch, np.ndarray):
        return list(batch)
    return [nested.index(batch, k) for k in range(n)]


def stack_as(space: gym.Space, rows: list) -> Any:
    """Stack observations [B, ...] with the space's dtypes (envs may return float64 for a
    float32 Box, or Python ints for Discrete)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: stack_as(s, [r[k] for r in rows]) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(stack_as(s, [r[i] for r in rows]) for i, s in enumerate(space.spaces))
    return np.asarray(rows, dtype=space.dtype)
