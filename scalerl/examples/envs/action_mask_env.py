"""An environment with invalid actions, observed RLlib-style through an action mask."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class ActionMaskEnv(gym.Env):
    """Pick the target action among a random set of valid actions.

    Each step a random subset of the `n` actions (at least 1, at most n-1) is valid; the
    target is one of them. Observation: `{"action_mask": float32 (n,) 0/1, "observations":
    float32 (n,) one-hot of the target}`; action: `Discrete(n)`. Reward 1 for the target, 0
    for another valid action; a masked action raises `ValueError`. Episodes are truncated
    after `episode_len` steps.

    Optimal return: `episode_len` (`max_return`). A uniformly random *valid* policy gets
    `episode_len * H(n-1) / (n-1)` on average (`random_return`; 9.13 for n=6, length 20).

    Config keys: "num_actions" (6), "episode_len" (20).
    """

    metadata = {"render_modes": []}

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.n = int(config.get("num_actions", 6))
        if self.n < 2:
            raise ValueError(f"num_actions must be >= 2, got {self.n}")
        self.episode_len = int(config.get("episode_len", 20))
        box = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)
        self.observation_space = gym.spaces.Dict({"action_mask": box, "observations": box})
        self.action_space = gym.spaces.Discrete(self.n)
        self.max_return = float(self.episode_len)
        harmonic = sum(1.0 / k for k in range(1, self.n))
        self.random_return = self.episode_len * harmonic / (self.n - 1)
        self.action_mask = np.ones(self.n, np.float32)
        self.target = 0
        self._t = 0

    def _next_obs(self) -> dict:
        k = int(self.np_random.integers(1, self.n))  # 1 .. n-1 valid actions
        valid = self.np_random.choice(self.n, size=k, replace=False)
        self.action_mask = np.zeros(self.n, np.float32)
        self.action_mask[valid] = 1.0
        self.target = int(self.np_random.choice(valid))
        one_hot = np.zeros(self.n, np.float32)
        one_hot[self.target] = 1.0
        return {"action_mask": self.action_mask.copy(), "observations": one_hot}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._next_obs(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        a = int(action)
        if self.action_mask[a] != 1.0:
            raise ValueError(f"action {a} is masked out (action_mask={self.action_mask})")
        reward = 1.0 if a == self.target else 0.0
        self._t += 1
        return self._next_obs(), reward, False, self._t >= self.episode_len, {}
