"""RandomEnv: any spaces, random observations and rewards (RLlib's example env of that
name), for checking that a config runs on given spaces."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.examples.envs._config import check_config

DEFAULTS: dict[str, Any] = {
    "observation_space": gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
    "action_space": gym.spaces.Discrete(2),
    "reward_space": gym.spaces.Box(-1.0, 1.0, (), np.float32),
    "p_terminated": 0.1,
    "max_episode_len": None,
    "check_action_bounds": False,
}


class RandomEnv(gym.Env):
    """Observations sampled from `observation_space`, rewards from `reward_space`; each
    step terminates with probability `p_terminated`, and an episode is truncated after
    `max_episode_len` steps (None: never).

    Config keys: "observation_space", "action_space", "reward_space", "p_terminated"
    (0.1), "max_episode_len" (None), "check_action_bounds" (False: any action is taken;
    True: an action outside `action_space` raises ValueError).
    """

    def __init__(self, config: dict | None = None):
        cfg = check_config("RandomEnv", config, DEFAULTS)
        self.observation_space = cfg["observation_space"]
        self.action_space = cfg["action_space"]
        self.reward_space = cfg["reward_space"]
        self.p_terminated = float(cfg["p_terminated"])
        self.max_episode_len = cfg["max_episode_len"]
        self.check_action_bounds = bool(cfg["check_action_bounds"])
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        """A random first observation."""
        super().reset(seed=seed)
        for space in (self.observation_space, self.action_space, self.reward_space):
            space.seed(int(self.np_random.integers(2**31)))
        self.steps = 0
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple:
        """A random observation and reward; the episode ends at random or at its limit."""
        if self.check_action_bounds and not self.action_space.contains(action):
            raise ValueError(f"RandomEnv: action {action!r} is not in {self.action_space}.")
        self.steps += 1
        terminated = bool(self.np_random.random() < self.p_terminated)
        truncated = self.max_episode_len is not None and self.steps >= self.max_episode_len
        reward = float(np.asarray(self.reward_space.sample()).sum())
        return self.observation_space.sample(), reward, terminated, truncated, {}
