"""The default actor-critic module for PPO: an MLP policy and an MLP value function."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from scalerl.core.models import ObsPreprocessor, mlp
from scalerl.core.rl_module import Columns, DefaultModelConfig, RLModule

DEFAULT_MODEL_CONFIG: dict[str, Any] = dataclasses.asdict(DefaultModelConfig())


class DefaultPPOTorchRLModule(RLModule):
    """pi(a|s) and V(s). Discrete actions get logits; Box actions a Gaussian mean and a
    state-independent learned log-std."""

    def setup(self) -> None:
        cfg = {**DEFAULT_MODEL_CONFIG, **self.model_config}
        hiddens, act = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        self.pre = ObsPreprocessor(self.observation_space)
        in_dim = self.pre.out_dim
        feat = hiddens[-1] if hiddens else in_dim
        self.continuous = isinstance(self.action_space, gym.spaces.Box)
        out_dim = int(self.action_space.shape[0]) if self.continuous else int(self.action_space.n)
        self.vf_share_layers = bool(cfg["vf_share_layers"])
        self.pi_encoder = mlp(in_dim, hiddens, act)
        self.vf_encoder = None if self.vf_share_layers else mlp(in_dim, hiddens, act)
        self.pi_head = mlp(feat, [], out_dim=out_dim, out_gain=0.01)
        self.vf_head = mlp(feat, [], out_dim=1, out_gain=1.0)
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((out_dim,), float(cfg["log_std_init"])))

    def _dist_inputs(self, features: torch.Tensor) -> torch.Tensor:
        out = self.pi_head(features)
        if self.continuous:
            out = torch.cat([out, self.log_std.expand_as(out)], dim=-1)
        return out

    def get_numpy_exploration_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        pre, encoder, head = (
            self.pre.numpy_fn(),
            self.pi_encoder.numpy_fn(),
            self.pi_head.numpy_fn(),
        )
        if not self.continuous:
            return lambda obs: head(encoder(pre(obs)))
        log_std = self.log_std.detach().cpu().numpy().copy()

        def dist_inputs(obs: np.ndarray) -> np.ndarray:
            mean = head(encoder(pre(obs)))
            return np.concatenate([mean, np.broadcast_to(log_std, mean.shape)], axis=-1)

        return dist_inputs

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x = self.pre(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(self.pi_encoder(x))}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x = self.pre(batch[Columns.OBS])
        pi_features = self.pi_encoder(x)
        vf_features = pi_features if self.vf_encoder is None else self.vf_encoder(x)
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(pi_features),
            Columns.VF_PREDS: self.vf_head(vf_features).squeeze(-1),
        }

    def compute_values(self, batch: dict[str, Any]) -> torch.Tensor:
        x = self.pre(batch[Columns.OBS])
        encoder = self.pi_encoder if self.vf_encoder is None else self.vf_encoder
        return self.vf_head(encoder(x)).squeeze(-1)
