"""RandomActionMaskEnv: RLlib's `ActionMaskEnv` (its example env of that name): a
`RandomEnv` whose observations carry a random mask of the allowed actions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.examples.envs.random_env import RandomEnv


class RandomActionMaskEnv(RandomEnv):
    """Observations `Dict(action_mask=Box(0, 1, (n,)), observations=<observation_space>)`
    over a Discrete(n) action space; each step allows a random half of the actions (at
    least one), and taking a masked action raises ValueError.

    Config keys: RandomEnv's ("action_space" must be Discrete; default Discrete(2)).
    """

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(
                f"ActionMaskEnv needs a Discrete action space, got {self.action_space}."
            )
        self.inner_observation_space = self.observation_space
        n = int(self.action_space.n)
        self.observation_space = gym.spaces.Dict(
            {
                "action_mask": gym.spaces.Box(0.0, 1.0, (n,), np.float32),
                "observations": self.inner_observation_space,
            }
        )
        self.valid_actions = np.ones(n, dtype=np.float32)

    def _observe(self, inner: Any) -> dict[str, Any]:
        n = len(self.valid_actions)
        mask = (self.np_random.random(n) < 0.5).astype(np.float32)
        mask[self.np_random.integers(n)] = 1.0  # at least one action is allowed
        self.valid_actions = mask
        return {"action_mask": mask, "observations": inner}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        """A random observation with a random action mask."""
        obs_space, self.observation_space = self.observation_space, self.inner_observation_space
        try:
            obs, info = super().reset(seed=seed, options=options)
        finally:
            self.observation_space = obs_space
        return self._observe(obs), info

    def step(self, action: Any) -> tuple:
        """RandomEnv's step; a masked action raises ValueError."""
        if not self.valid_actions[int(action) - int(self.action_space.start)]:
            raise ValueError(f"Action {action} is masked (mask {self.valid_actions}).")
        obs_space, self.observation_space = self.observation_space, self.inner_observation_space
        try:
            obs, reward, terminated, truncated, info = super().step(action)
        finally:
            self.observation_space = obs_space
        return self._observe(obs), reward, terminated, truncated, info
