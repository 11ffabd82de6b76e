"""CartPole without the velocities: a partially observable task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import CartPoleEnv


class StatelessCartPole(gym.Env):
    """CartPole-v1 observing only (cart position, pole angle).

    Same dynamics, reward and termination as CartPole-v1, truncated after
    `config["max_episode_steps"]` (default 500) steps. A memoryless policy cannot balance
    the pole well; a recurrent one (or frame stacking) can. Optimal return: 500.

    Config keys: "max_episode_steps" (500), "render_mode" (None).
    """

    metadata = CartPoleEnv.metadata

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.render_mode = config.get("render_mode")
        self._env = CartPoleEnv(render_mode=self.render_mode)
        high = self._env.observation_space.high[[0, 2]]
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.action_space = self._env.action_space
        self.max_episode_steps = int(config.get("max_episode_steps", 500))
        self.max_return = float(self.max_episode_steps)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # Share the generator so reset(seed=s) gives CartPole's reset(seed=s) state.
        self._env.np_random = self.np_random
        obs, info = self._env.reset(options=options)
        self._t = 0
        return obs[[0, 2]], info

    def step(self, action):
        obs, reward, terminated, _, info = self._env.step(action)
        self._t += 1
        truncated = self._t >= self.max_episode_steps
        return obs[[0, 2]], float(reward), terminated, truncated, info

    def render(self):
        return self._env.render()

    def close(self):
        self._env.close()
