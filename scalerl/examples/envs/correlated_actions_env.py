"""A two-part action whose second part must depend on the first (RLlib's
`CorrelatedActionsEnv` idea), made so that a policy with independent heads cannot solve it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CorrelatedActionsEnv(gym.Env):
    """Act with `(a1, a2)`: vary a1 from step to step, and answer it with a2 = (a1 + k) mod n.

    Observation: float32 one-hot `(n,)` of a shift `k`, drawn at reset and fixed for the
    episode. Action: `Tuple(Discrete(n), Discrete(n))`. Reward per step, up to 2:

    - +1 if `a1` differs from the previous step's `a1` (always on the first step). The
      previous `a1` is not observed, and the observation stays the same all episode, so a
      memoryless policy can only avoid repeats by drawing `a1` at random: a uniform `a1`
      scores `1 - 1/n` on average.
    - +1 if `a2 == (a1 + k) % n`.

    So a1 must stay random *and* a2 must follow it. A policy that draws a2 given the a1 it
    drew (autoregressive) gets `2 - 1/n` per step. One whose heads are independent given the
    observation, `p(a1|s) q(a2|s)`, gets `(1 - sum_i p_i^2) + sum_i p_i q_{i+k} <=
    1 - sum_i p_i^2 + max_i p_i`, at most 1.1875 per step for n=4 (`factorized_bound`).
    A uniformly random policy gets 1 per step. Episodes are truncated after `episode_len`.

    Returns for n=4, 20 steps (`max_return`, `factorized_bound`, `random_return`): 35.25,
    24.19, 20.25 (the first step's a1 reward is free).

    Config keys: "num_actions" (4), "episode_len" (20).
    """

    metadata = {"render_modes": []}

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.n = int(config.get("num_actions", 4))
        if self.n < 2:
            raise ValueError(f"num_actions must be >= 2, got {self.n}")
        self.episode_len = int(config.get("episode_len", 20))
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)
        self.action_space = gym.spaces.Tuple((gym.spaces.Discrete(self.n),) * 2)
        n, steps = self.n, self.episode_len
        self.max_return = 1.0 + (steps - 1) * (1 - 1 / n) + steps
        self.random_return = 1.0 + (steps - 1) * (1 - 1 / n) + steps / n
        self.factorized_bound = _factorized_bound(n, steps)
        self.shift = 0
        self.prev_a1: int | None = None
        self._t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, np.float32)
        obs[self.shift] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.shift = int(self.np_random.integers(self.n))
        self.prev_a1, self._t = None, 0
        return self._obs(), {}

    def step(self, action):
        if not self.action_space.contains(tuple(action)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        a1, a2 = int(action[0]), int(action[1])
        reward = float(a1 != self.prev_a1) + float(a2 == (a1 + self.shift) % self.n)
        self.prev_a1 = a1
        self._t += 1
        return self._obs(), reward, False, self._t >= self.episode_len, {}


def _factorized_bound(n: int, steps: int) -> float:
    """The best expected return of independent heads, over every a1 distribution p.

    A step scores at most `1 - sum p_i^2 + max p_i` (the first step `1 + max p_i`). For a
    given max m, sum p_i^2 is least with the rest spread evenly: m^2 + (1-m)^2/(n-1); the
    return is then a function of m alone, maximized here on a fine grid."""
    m = np.linspace(1 / n, 1.0, 100_001)
    per_step = 1 - m * m - (1 - m) ** 2 / (n - 1) + m
    return float(np.max(1 + m + (steps - 1) * per_step))
