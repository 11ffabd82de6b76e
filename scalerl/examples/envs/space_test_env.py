"""A generic environment over any observation and action spaces, for integration tests."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _first_leaf(space: spaces.Space, x: Any) -> tuple[spaces.Space, Any]:
    """The first leaf space of a nested Dict/Tuple space and the matching part of `x`."""
    while isinstance(space, (spaces.Dict, spaces.Tuple)):
        if isinstance(space, spaces.Dict):
            key = next(iter(space.spaces))
            space, x = space[key], x[key]
        else:
            space, x = space[0], x[0]
    return space, x


def _above_middle(space: spaces.Space, x: Any) -> bool:
    """Whether the first scalar of `x` lies above the middle of its leaf space's range."""
    space, x = _first_leaf(space, x)
    value = float(np.asarray(x).flat[0])
    if isinstance(space, spaces.Discrete):
        mid = int(space.start) + (int(space.n) - 1) / 2
    elif isinstance(space, spaces.MultiDiscrete):
        mid = float(np.asarray(space.start).flat[0]) + (float(space.nvec.flat[0]) - 1) / 2
    elif isinstance(space, spaces.MultiBinary):
        mid = 0.5
    elif isinstance(space, spaces.Box):
        low, high = float(space.low.flat[0]), float(space.high.flat[0])
        mid = (low + high) / 2 if np.isfinite(low) and np.isfinite(high) else 0.0
    else:
        mid = 0.0
    return value > mid


class SpaceTestEnv(gym.Env):
    """Random observations from `observation_space`; checks every action against
    `action_space` (a `ValueError` if not contained).

    Reward 1.0 when the first scalar of the action is above the middle of its leaf's range
    exactly when the first scalar of the observation is (so a policy must read the
    observation), else 0.0; a random policy gets about half. Truncated after `episode_len`.

    Config keys: "observation_space", "action_space" (any Gymnasium spaces; default to the
    class attributes, so subclasses can set them), "episode_len" (10).
    """

    metadata = {"render_modes": []}
    observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, config: dict | None = None):
        config = config or {}
        # Copies: each env seeds its own spaces, even when a config is shared.
        self.observation_space = copy.deepcopy(
            config.get("observation_space", type(self).observation_space)
        )
        self.action_space = copy.deepcopy(config.get("action_space", type(self).action_space))
        self.episode_len = int(config.get("episode_len", 10))
        self.max_return = float(self.episode_len)
        self._obs = None
        self._seeded = False
        self._t = 0

    def _next_obs(self) -> Any:
        self._obs = self.observation_space.sample()
        return self._obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self.observation_space.seed(int(self.np_random.integers(2**31)))
            self._seeded = True
        self._t = 0
        return self._next_obs(), {}

    def step(self, action):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(
                f"action {action!r} (type {type(action).__name__}, dtype "
                f"{getattr(action, 'dtype', None)}, shape {np.shape(action)}) is not in "
                f"{self.action_space}"
            )
        good = _above_middle(self.action_space, action) == _above_middle(
            self.observation_space, self._obs
        )
        self._t += 1
        return self._next_obs(), float(good), False, self._t >= self.episode_len, {}
