"""SimpleCorridor: walk right along a corridor to its end (the env of RLlib's custom-env
tutorial)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.examples.envs._config import check_config


class SimpleCorridor(gym.Env):
    """The agent starts at position 0 and reaches the goal at `corridor_length`.

    Actions: 0 steps left (not below 0), 1 steps right. Reward: +1.0 on reaching the goal
    (which terminates the episode), -0.01 for every other step. Observation: the position,
    a float Box of shape (1,). Episodes are truncated after `max_episode_steps` (100).

    Config keys: "corridor_length" (10), "max_episode_steps" (100).
    """

    def __init__(self, config: dict | None = None):
        cfg = check_config(
            "SimpleCorridor", config, {"corridor_length": 10, "max_episode_steps": 100}
        )
        self.end_pos = int(cfg["corridor_length"])
        self.max_episode_steps = int(cfg["max_episode_steps"])
        self.observation_space = gym.spaces.Box(0.0, float(self.end_pos), (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.cur_pos = 0
        self.steps = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.cur_pos], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        """Back to position 0."""
        super().reset(seed=seed)
        self.cur_pos, self.steps = 0, 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple:
        """Move one cell; +1.0 and termination at the goal, else -0.01."""
        self.cur_pos = max(0, self.cur_pos + (1 if int(action) == 1 else -1))
        self.steps += 1
        terminated = self.cur_pos >= self.end_pos
        truncated = not terminated and self.steps >= self.max_episode_steps
        return self._obs(), 1.0 if terminated else -0.01, terminated, truncated, {}
