"""CartPoleWithDictObservationSpace: CartPole-v1 observing a Dict (RLlib's example env of
that name), for trying Dict observations and `FlattenObservations`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import CartPoleEnv


class CartPoleWithDictObservationSpace(CartPoleEnv):
    """CartPole-v1's dynamics and rewards, truncated at 500 steps; the observation is
    `{"x-pos": Box(1,), "x-veloc": Box(1,), "angle-pos": Box(1,), "angle-veloc": Box(1,)}`
    (the same four numbers as a Dict). Config: unused (accepted)."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        box = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"x-pos": box, "x-veloc": box, "angle-pos": box, "angle-veloc": box}
        )
        self.steps = 0

    @staticmethod
    def _as_dict(obs: np.ndarray) -> dict[str, np.ndarray]:
        obs = np.asarray(obs, dtype=np.float32)
        names = ("x-pos", "x-veloc", "angle-pos", "angle-veloc")
        return {name: obs[i : i + 1] for i, name in enumerate(names)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        """CartPole's reset, observed as a Dict."""
        obs, info = super().reset(seed=seed, options=options)
        self.steps = 0
        return self._as_dict(obs), info

    def step(self, action: Any) -> tuple:
        """CartPole's step, observed as a Dict; truncated after 500 steps."""
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        return self._as_dict(obs), reward, terminated, truncated or self.steps >= 500, info
