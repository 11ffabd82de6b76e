"""The default PPO module with memory: `use_lstm=True` (an LSTM) or `use_attention=True`
(a GTrXL), between the observation encoder and the policy and value heads.

    x_t         = MLP(features(o_t) [, a_{t-1}] [, r_{t-1}])     (fcnet_hiddens)
    y_t, s_t    = core(x_t, s_{t-1})                             (LSTM or GTrXL)
    pi(a|.), V  = heads(y_t)

The value function has its own encoder and core (state keys prefixed `vf_`) unless
`vf_share_layers=True`: sharing one core made the value loss, whose scale is that of the
returns, drown the policy gradient under the gradient-norm clip. Every forward
pass takes time-major-within-sequence batches: observations [B, T, ...], `state_in` at the
sequences' first steps [B, ...] and, when configured, the previous actions and rewards
[B, T, ...]. EnvRunners call it with T = 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from scalerl.algorithms.ppo.default_ppo_rl_module import (
    DEFAULT_MODEL_CONFIG,
    DefaultPPOTorchRLModule,
)
from scalerl.core.models import ObsPreprocessor, mlp
from scalerl.core.models.initializers import init_layers
from scalerl.core.models.observations import (
    FLOAT_MIN,
    MASK_KEY,
    MASKED_OBS_KEY,
)
from scalerl.core.models.recurrent import LSTMCore, memory_inputs
from scalerl.core.rl_module import Columns

VF = "vf_"  # prefix of the value core's state keys


def is_recurrent_config(model_config: dict[str, Any]) -> bool:
    """Whether `model_config` asks for a recurrent core (`use_lstm` or `use_attention`)."""
    return bool(model_config.get("use_lstm") or model_config.get("use_attention"))


def build_core(in_dim: int, cfg: dict[str, Any]) -> nn.Module:
    """The recurrent core for inputs of size `in_dim`: a GTrXL if `use_attention`, else an LSTM."""
    if cfg.get("use_attention"):
        from scalerl.core.models.attention import gtrxl_from_model_config

        return gtrxl_from_model_config(in_dim, cfg)
    return LSTMCore(in_dim, int(cfg["lstm_cell_size"]))


class RecurrentPPOTorchRLModule(DefaultPPOTorchRLModule):
    """Actor-critic with a memory core; action masking works as in the default module."""

    def setup(self) -> None:
        cfg = {**DEFAULT_MODEL_CONFIG, **self.model_config}
        enc_space = self._encoder_space()
        self.max_seq_len = int(cfg["max_seq_len"])
        self.use_prev_action = bool(cfg["lstm_use_prev_action"])
        self.use_prev_reward = bool(cfg["lstm_use_prev_reward"])
        self.pre = ObsPreprocessor(enc_space, cfg)
        self.prev_action_pre = (
            ObsPreprocessor(self.action_space, cfg) if self.use_prev_action else None
        )
        in_dim = self.pre.out_dim + int(self.use_prev_reward)
        if self.prev_action_pre is not None:
            in_dim += self.prev_action_pre.out_dim
        hiddens, act = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        self.encoder = mlp(in_dim, hiddens, act)
        self.core = build_core(self.encoder.out_dim, cfg)
        self.vf_share_layers = bool(cfg["vf_share_layers"])
        if not self.vf_share_layers:
            self.vf_encoder = mlp(in_dim, hiddens, act)
            self.vf_core = build_core(self.vf_encoder.out_dim, cfg)
        init_layers([self.encoder, getattr(self, "vf_encoder", self.encoder)], cfg, "fcnet")
        self._build_heads(self.core.out_dim, cfg)

    def get_initial_state(self) -> dict[str, torch.Tensor]:
        """The cores' zero state: the policy core's, plus the value core's under `vf_`-prefixed
        keys when the value function does not share layers.
        """
        state = self.core.initial_state()
        if not self.vf_share_layers:
            state.update({VF + k: v for k, v in self.vf_core.initial_state().items()})
        return state

    def get_numpy_exploration_fn(self) -> None:
        return None  # stateful: see `get_numpy_recurrent_fn`

    def get_numpy_recurrent_fn(self) -> Callable | None:
        """One exploration step in numpy with the current weights (LSTM cores without a
        CNN): (obs, state, prev_actions, prev_rewards), all [B, ...] without a time axis
        -> (action_dist_inputs, state_out). At the batch of one env step numpy's per-op
        cost is several times below torch's (see the default module's numpy path)."""
        pre = self.pre.numpy_fn()
        prev_pre = self.prev_action_pre.numpy_fn() if self.prev_action_pre is not None else None
        cores = [self.core] if self.vf_share_layers else [self.core, self.vf_core]
        if pre is None or (self.prev_action_pre is not None and prev_pre is None):
            return None
        if not all(isinstance(core, LSTMCore) for core in cores):
            return None
        encoder, head = self.encoder.numpy_fn(), self.pi_head.numpy_fn()
        step = self.core.numpy_step_fn()
        vf = (
            None
            if self.vf_share_layers
            else (self.vf_encoder.numpy_fn(), self.vf_core.numpy_step_fn())
        )
        finish = self.numpy_dist_inputs_fn()  # free log-std, clipped log-stds
        masked, use_prev_reward = self.masked, self.use_prev_reward

        def fn(obs: Any, state: dict, prev_actions: Any, prev_rewards: np.ndarray):
            parts = [pre(obs[MASKED_OBS_KEY] if masked else obs)]
            if prev_pre is not None:
                parts.append(prev_pre(prev_actions))
            if use_prev_reward:
                parts.append(prev_rewards[:, None].astype(np.float32))
            x = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
            y, state_out = step(
                encoder(x), {k: v for k, v in state.items() if not k.startswith(VF)}
            )
            if vf is not None:
                vf_encoder, vf_step = vf
                own = {k[len(VF) :]: v for k, v in state.items() if k.startswith(VF)}
                _, vf_out = vf_step(vf_encoder(x), own)
                state_out.update({VF + k: v for k, v in vf_out.items()})
            out = finish(head(y))
            if masked:
                out = np.where(obs[MASK_KEY] < 0.5, np.float32(FLOAT_MIN), out)
            return out, state_out

        return fn

    def _inputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, int, int]:
        """The encoders' input [B*T, in_dim]: observation features [, a_{t-1}] [, r_{t-1}]."""
        obs = self.encoder_obs(batch[Columns.OBS])
        return memory_inputs(self.pre, self.prev_action_pre, self.use_prev_reward, obs, batch)

    def _memory(self, batch: dict[str, Any], policy: bool = True, value: bool = True):
        """(policy features [B, T, D], value features [B, T, D], state_out); a side not
        asked for is None (and its state passes through unchanged)."""
        x, B, T = self._inputs(batch)
        state, mask = batch[Columns.STATE_IN], batch.get(Columns.LOSS_MASK)
        state_out = dict(state)
        y = vy = None
        if policy or self.vf_share_layers:
            own = {k: v for k, v in state.items() if not k.startswith(VF)}
            y, out = self.core(self.encoder(x).reshape(B, T, -1), own, mask)
            state_out.update(out)
            vy = y if self.vf_share_layers else None
        if value and not self.vf_share_layers:
            own = {k[len(VF) :]: v for k, v in state.items() if k.startswith(VF)}
            vy, out = self.vf_core(self.vf_encoder(x).reshape(B, T, -1), own, mask)
            state_out.update({VF + k: v for k, v in out.items()})
        return y, vy, state_out

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The value core runs too: its state must follow the episode.
        y, _, state_out = self._memory(batch)
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(y, batch[Columns.OBS]),
            Columns.STATE_OUT: state_out,
        }

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        y, vy, state_out = self._memory(batch)
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(y, batch[Columns.OBS]),
            Columns.VF_PREDS: self.vf_head(vy).squeeze(-1),
            Columns.STATE_OUT: state_out,
        }

    def compute_values(self, batch: dict[str, Any]) -> torch.Tensor:
        """V for every step: [B, T]."""
        _, vy, _ = self._memory(batch, policy=False)
        return self.vf_head(vy).squeeze(-1)
