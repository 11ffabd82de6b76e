"""RandomRLModule: acts uniformly at random (a baseline opponent; RLlib's example of the
same name). It has no trainable weights: list it outside `policies_to_train`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalerl.core.rl_module import Columns, RLModule
from scalerl.utils.errors import ConfigError


class RandomRLModule(RLModule):
    """Uniform random actions for Discrete, MultiDiscrete and bounded Box action spaces."""

    def setup(self) -> None:
        space = self.action_space
        if not isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.Box):
            raise ConfigError(f"RandomRLModule supports Discrete, MultiDiscrete, Box; got {space}.")
        self.rng = np.random.default_rng()
        # A buffer, so `get_state()` / checkpoints have something to hold.
        self.register_buffer("num_calls", torch.zeros((), dtype=torch.int64))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        while isinstance(obs, dict | tuple | list):  # nested observations: any leaf
            obs = next(iter(obs.values())) if isinstance(obs, dict) else obs[0]
        n = obs.shape[0]
        self.num_calls += 1
        actions = np.stack([self.action_space.sample() for _ in range(n)])
        inputs = torch.zeros(n, self._num_inputs())  # uniform logits / zero mean, log-std
        return {Columns.ACTIONS: torch.from_numpy(actions), Columns.ACTION_DIST_INPUTS: inputs}

    def _num_inputs(self) -> int:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(space.n)
        if isinstance(space, gym.spaces.MultiDiscrete):
            return int(np.sum(space.nvec))
        return 2 * int(np.prod(space.shape))
