"""The default actor-critic module for PPO: an encoder per observation space, MLP policy and
value heads, and the action distribution of the action space."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from scalerl.core.distributions import DiagGaussian, SquashedGaussian
from scalerl.core.models import ObsPreprocessor, mlp
from scalerl.core.models.initializers import init_layers
from scalerl.core.models.observations import (
    FLOAT_MIN,
    MASK_KEY,
    MASKED_OBS_KEY,
    is_action_mask_space,
)
from scalerl.core.rl_module import Columns, DefaultModelConfig, RLModule, ValueFunctionAPI
from scalerl.utils.errors import ConfigError

DEFAULT_MODEL_CONFIG: dict[str, Any] = dataclasses.asdict(DefaultModelConfig())


class DefaultPPOTorchRLModule(RLModule, ValueFunctionAPI):
    """pi(a|s) and V(s) over features of the observation (`ObsPreprocessor`: one-hots,
    flattening, a CNN for images).

    A Gaussian over a Box action space gets a state-independent learned log-std; every
    other distribution's inputs come from the policy head, the log-stds of Box parts of a
    Tuple/Dict action included (their head biases start at `log_std_init`). An observation
    `Dict(action_mask=..., observations=...)` masks the logits of invalid actions.
    """

    def setup(self) -> None:
        cfg = {**DEFAULT_MODEL_CONFIG, **self.model_config}
        hiddens, act = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        enc_space = self._encoder_space()
        self.vf_share_layers = bool(cfg["vf_share_layers"])
        self.pre = ObsPreprocessor(enc_space, cfg)
        # A CNN has weights: the value function gets its own unless layers are shared.
        self.vf_pre = (
            ObsPreprocessor(enc_space, cfg)
            if self.pre.has_params and not self.vf_share_layers
            else None
        )
        in_dim = self.pre.out_dim
        feat = hiddens[-1] if hiddens else in_dim
        self.pi_encoder = mlp(in_dim, hiddens, act)
        self.vf_encoder = None if self.vf_share_layers else mlp(in_dim, hiddens, act)
        init_layers([self.pi_encoder, self.vf_encoder or self.pi_encoder], cfg, "fcnet")
        self._build_heads(feat, cfg)

    def _build_heads(self, feat: int, cfg: dict[str, Any]) -> None:
        """Policy and value heads over `feat` features, and the free log-std if any."""
        dist_cls = self.get_train_action_dist_cls()
        # The free log-std only when the whole distribution is a Gaussian. In a Tuple/Dict
        # the head also outputs each Box part's log-std (state-dependent, as RLlib's
        # default `free_log_std=False` makes every Gaussian): the inputs then stay the
        # children's inputs concatenated, with no parameters to interleave into them in
        # the forward pass, the numpy path and the hand-written backward pass.
        # `free_log_std=False` (RLlib's default) makes a Box's log-std an output of the head.
        gaussian = issubclass(dist_cls, (DiagGaussian, SquashedGaussian))
        self.free_log_std = gaussian and bool(cfg["free_log_std"])
        out_dim = dist_cls.input_dim(self.action_space)
        if self.free_log_std:
            out_dim //= 2
        head_hiddens, head_act = list(cfg["head_fcnet_hiddens"]), cfg["head_fcnet_activation"]
        self.pi_head = mlp(feat, head_hiddens, head_act, out_dim=out_dim, out_gain=0.01)
        self.vf_head = mlp(feat, head_hiddens, head_act, out_dim=1, out_gain=1.0)
        init_layers([self.pi_head, self.vf_head], cfg, "head_fcnet")
        # Log-stds are clipped to [-c, c] (RLlib's `log_std_clip_param`): a bool mask of the
        # distribution inputs that are log-stds (None: there are none).
        self.log_std_clip = float(cfg["log_std_clip_param"])
        slots = dist_cls.log_std_indices(self.action_space)
        mask = torch.zeros(dist_cls.input_dim(self.action_space), dtype=torch.bool)
        mask[slots] = True
        self.register_buffer("log_std_mask", mask if slots else None, persistent=False)
        if self.free_log_std:
            self.log_std = nn.Parameter(torch.full((out_dim,), float(cfg["log_std_init"])))
        else:
            with torch.no_grad():
                self.pi_head.layers[-1].bias[slots] = float(cfg["log_std_init"])

    def clip_log_std(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(distribution inputs with the log-stds clipped to [-log_std_clip_param,
        log_std_clip_param], the bool mask of the clipped entries, whose gradient is 0);
        (inputs, None) when the distribution has no log-std."""
        if self.log_std_mask is None:
            return inputs, None
        c = self.log_std_clip
        clipped = self.log_std_mask & (inputs.abs() > c)
        return torch.where(clipped, inputs.clamp(-c, c), inputs), clipped

    def numpy_dist_inputs_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """Head output -> distribution inputs in numpy, as `_dist_inputs` makes them (the
        free log-std appended, log-stds clipped), with the current weights."""
        log_std = self.log_std.detach().cpu().numpy().copy() if self.free_log_std else None
        mask = None if self.log_std_mask is None else self.log_std_mask.cpu().numpy()
        c = np.float32(self.log_std_clip)

        def fn(out: np.ndarray) -> np.ndarray:
            if log_std is not None:
                out = np.concatenate([out, np.broadcast_to(log_std, out.shape)], axis=-1)
            if mask is not None:
                out = np.where(mask, np.clip(out, -c, c), out)
            return out

        return fn

    def _encoder_space(self) -> Any:
        """Set `masked`; the space the encoders see (all of it, unless it carries a mask)."""
        self.masked = is_action_mask_space(self.observation_space)
        if not self.masked:
            return self.observation_space
        self._check_mask_space()
        return self.observation_space[MASKED_OBS_KEY]

    def _check_mask_space(self) -> None:
        mask_space = self.observation_space[MASK_KEY]
        n = getattr(self.action_space, "n", None)
        if n is None or getattr(mask_space, "shape", None) != (int(n),):
            raise ConfigError(
                f"An `{MASK_KEY}` observation masks a Discrete(n) action space with a Box of "
                f"shape (n,); got action space {self.action_space} and mask space {mask_space}."
            )

    def encoder_obs(self, obs: Any) -> Any:
        """The part of the observation the encoders see (all of it, unless masked)."""
        return obs[MASKED_OBS_KEY] if self.masked else obs

    def mask_dist_inputs(self, inputs: torch.Tensor, obs: Any, fill: float = FLOAT_MIN):
        """Logits of masked actions -> the lowest float: never sampled, never greedy.
        (`fill=0` zeroes their gradient instead.)"""
        if not self.masked:
            return inputs
        return inputs.masked_fill(obs[MASK_KEY] < 0.5, fill)

    def _dist_inputs(self, features: torch.Tensor, obs: Any) -> torch.Tensor:
        out = self.pi_head(features)
        if self.free_log_std:
            out = torch.cat([out, self.log_std.expand_as(out)], dim=-1)
        return self.mask_dist_inputs(self.clip_log_std(out)[0], obs)

    def get_numpy_exploration_fn(self) -> Callable[[Any], np.ndarray] | None:
        pre = self.pre.numpy_fn()
        if pre is None:
            return None  # a CNN: EnvRunners use the torch forward pass
        encoder, head = self.pi_encoder.numpy_fn(), self.pi_head.numpy_fn()
        finish, masked = self.numpy_dist_inputs_fn(), self.masked

        def dist_inputs(obs: Any) -> np.ndarray:
            out = finish(head(encoder(pre(obs[MASKED_OBS_KEY] if masked else obs))))
            if masked:
                out = np.where(obs[MASK_KEY] < 0.5, np.float32(FLOAT_MIN), out)
            return out

        return dist_inputs

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        features = self.pi_encoder(self.pre(self.encoder_obs(obs)))
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(features, obs)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        x = self.pre(self.encoder_obs(obs))
        pi_features = self.pi_encoder(x)
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(pi_features, obs),
            Columns.VF_PREDS: self._values(obs, x, pi_features),
        }

    def compute_values(self, batch: dict[str, Any]) -> torch.Tensor:
        obs = batch[Columns.OBS]
        x = self.pre(self.encoder_obs(obs))
        return self._values(obs, x, self.pi_encoder(x) if self.vf_encoder is None else None)

    def _values(self, obs: Any, x: torch.Tensor, pi_features: torch.Tensor | None):
        if self.vf_encoder is None:
            return self.vf_head(pi_features).squeeze(-1)
        if self.vf_pre is not None:
            x = self.vf_pre(self.encoder_obs(obs))
        return self.vf_head(self.vf_encoder(x)).squeeze(-1)
