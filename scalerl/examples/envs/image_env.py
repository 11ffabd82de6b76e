"""A procedurally generated image task: name the quadrant that holds the target."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

GRID = 4  # the image is split into GRID x GRID cells; the target fills one


class ImageTargetEnv(gym.Env):
    """Each step shows a noisy image with one bright square; act with its quadrant.

    Observation: uint8 `(size, size, channels)` image: dark noisy background and a bright
    square filling one random cell of a 4x4 grid, in one of two colours (noise too). Action:
    `Discrete(4)`, the quadrant of the square (0 top-left, 1 top-right, 2 bottom-left,
    3 bottom-right). Reward 1 if right, else 0; a fresh image every step; truncated after
    `episode_len` steps. The answer is only in the pixels (`target_action` holds it for tests).

    Optimal return: `episode_len` (`max_return`); a random policy gets `episode_len / 4`
    (`random_return`). A small CNN + PPO learns it within about 100-200k steps.

    Config keys: "size" (16), "channels" (3), "episode_len" (10).
    """

    metadata = {"render_modes": []}

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.size = int(config.get("size", 16))
        self.channels = int(config.get("channels", 3))
        if self.size < GRID or self.channels < 1:
            raise ValueError(f"need size >= {GRID} and channels >= 1, got {config}")
        self.episode_len = int(config.get("episode_len", 10))
        shape = (self.size, self.size, self.channels)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.max_return = float(self.episode_len)
        self.random_return = self.episode_len / 4
        # Two colours: bright in every channel, or bright in even channels and mid in odd ones.
        odd = np.arange(self.channels) % 2 == 1
        self._colours = np.stack([np.full(self.channels, 255), np.where(odd, 140, 255)])
        self.target_action = 0
        self._t = 0

    def _next_obs(self) -> np.ndarray:
        rng = self.np_random
        img = rng.integers(0, 60, size=self.observation_space.shape)
        row, col = rng.integers(0, GRID, size=2)
        cell = self.size // GRID
        colour = self._colours[rng.integers(2)]
        square = colour - rng.integers(0, 50, size=(cell, cell, self.channels))
        img[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = square
        self.target_action = int(2 * (row >= GRID // 2) + (col >= GRID // 2))
        return np.clip(img, 0, 255).astype(np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._next_obs(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward = 1.0 if int(action) == self.target_action else 0.0
        self._t += 1
        return self._next_obs(), reward, False, self._t >= self.episode_len, {}
