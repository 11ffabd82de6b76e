"""R2D2's recurrent Q-network: an LSTM between the observation encoder and a dueling head.

    x_t        = MLP(features(o_t) [, onehot(a_{t-1})] [, r_{t-1}])     (fcnet_hiddens)
    y_t, s_t   = LSTM(x_t, s_{t-1})                                    (lstm_cell_size)
    Q(., a)    = V(y_t) + A(y_t, a) - mean_a' A(y_t, a')               (dueling)

Any observation space goes through the shared `ObsPreprocessor`. Every forward pass takes
sequences: observations [B, T, ...], `state_in` at the first step [B, ...], previous
actions and rewards [B, T]; EnvRunners call it with T = 1.

Acting is epsilon-greedy, written as the categorical distribution it is:
P(a) = eps / |A| + (1 - eps) [a = argmax Q], so `ACTION_DIST_INPUTS` of exploration are
log P (EnvRunners sample them with their seeded generator, in numpy or torch) and those of
inference are Q (whose greedy action is argmax Q). `epsilon` is a buffer: the learner sets
it from the schedule and it travels with the weights, as in DQN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from scalerl.core.models import ObsPreprocessor, mlp
from scalerl.core.models.initializers import INITIALIZER_KEYS, reject_unsupported
from scalerl.core.models.observations import FLOAT_MIN
from scalerl.core.models.recurrent import LSTMCore, memory_inputs
from scalerl.core.rl_module import Columns, DefaultModelConfig, RLModule
from scalerl.core.rl_module.default_model_config import POLICY_HEAD_SETTINGS
from scalerl.utils.errors import ConfigError

R2D2_MODEL_DEFAULTS = {
    "use_lstm": True,
    "lstm_cell_size": 64,
    "max_seq_len": 20,
    "fcnet_hiddens": [64],
    "fcnet_activation": "relu",
    "lstm_use_prev_action": True,
    "lstm_use_prev_reward": True,
    "dueling": True,
}


def epsilon_greedy_logits(q: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
    """log P(a) of epsilon-greedy over `q` [..., A] (FLOAT_MIN where P = 0)."""
    A = q.shape[-1]
    greedy = torch.nn.functional.one_hot(q.argmax(-1), A).to(q.dtype)
    probs = epsilon / A + (1.0 - epsilon) * greedy
    return torch.log(probs).clamp(min=FLOAT_MIN)


def numpy_epsilon_greedy_logits(q: np.ndarray, epsilon: float) -> np.ndarray:
    """`epsilon_greedy_logits` in numpy, for q of shape [B, A]: the EnvRunners' fast path."""
    A = q.shape[-1]
    probs = np.full(q.shape, epsilon / A, dtype=np.float32)
    probs[np.arange(len(q)), q.argmax(-1)] += 1.0 - epsilon
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(probs), np.float32(FLOAT_MIN))


class RecurrentDQNTorchRLModule(RLModule):
    """Q(h_t, .) for a Discrete action space, with an LSTM memory (R2D2)."""

    # EnvRunners record the state every `max_seq_len` steps of each episode, where the
    # replay sequences start (see `utils.replay_buffers.sequence_cutter`).
    episode_aligned_states = True

    def setup(self) -> None:
        cfg = {**dataclasses.asdict(DefaultModelConfig()), **R2D2_MODEL_DEFAULTS}
        cfg.update(self.model_config)
        unsupported = [*POLICY_HEAD_SETTINGS[:6], *INITIALIZER_KEYS]
        reject_unsupported(cfg, dataclasses.asdict(DefaultModelConfig()), unsupported, "R2D2")
        if not hasattr(self.action_space, "n") or hasattr(self.action_space, "nvec"):
            raise ConfigError(
                f"R2D2 needs a Discrete action space; got {self.action_space}. For Box actions "
                "use SAC (or PPO with `use_lstm`)."
            )
        self.num_actions = int(self.action_space.n)
        self.action_start = int(getattr(self.action_space, "start", 0))
        self.max_seq_len = int(cfg["max_seq_len"])
        self.use_prev_reward = bool(cfg["lstm_use_prev_reward"])
        self.pre = ObsPreprocessor(self.observation_space, cfg)
        self.prev_action_pre = (
            ObsPreprocessor(self.action_space, cfg) if cfg["lstm_use_prev_action"] else None
        )
        in_dim = self.pre.out_dim + int(self.use_prev_reward)
        if self.prev_action_pre is not None:
            in_dim += self.prev_action_pre.out_dim
        self.encoder = mlp(in_dim, list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"])
        self.core = LSTMCore(self.encoder.out_dim, int(cfg["lstm_cell_size"]))
        self.advantage_head = mlp(self.core.out_dim, [], out_dim=self.num_actions)
        self.value_head = mlp(self.core.out_dim, [], out_dim=1) if cfg["dueling"] else None
        self.register_buffer("epsilon", torch.tensor(1.0))

    def get_initial_state(self) -> dict[str, torch.Tensor]:
        """The LSTM core's zero state {"h", "c"} for one sequence."""
        return self.core.initial_state()

    def _inputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, int, int]:
        """The encoder's input [B*T, in_dim]: features(o_t) [, a_{t-1}] [, r_{t-1}]."""
        obs = batch[Columns.OBS]
        return memory_inputs(self.pre, self.prev_action_pre, self.use_prev_reward, obs, batch)

    def _q_head(self, y: torch.Tensor) -> torch.Tensor:
        advantages = self.advantage_head(y)
        if self.value_head is None:
            return advantages
        return self.value_head(y) + advantages - advantages.mean(dim=-1, keepdim=True)

    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        """{QF_PREDS: [B, T, A], STATE_OUT: the state after the last step}."""
        x, B, T = self._inputs(batch)
        y, state_out = self.core(self.encoder(x).reshape(B, T, -1), batch[Columns.STATE_IN])
        return {QF_PREDS: self._q_head(y), Columns.STATE_OUT: state_out}

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        out = self.compute_q_values(batch)
        return {Columns.ACTION_DIST_INPUTS: out[QF_PREDS], **out}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        out = self.compute_q_values(batch)
        logits = epsilon_greedy_logits(out[QF_PREDS], self.epsilon)
        return {Columns.ACTION_DIST_INPUTS: logits, **out}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.compute_q_values(batch)

    def get_numpy_recurrent_fn(self) -> Callable | None:
        """One exploration step in numpy with the current weights and epsilon:
        (obs, state, prev_actions, prev_rewards) [B, ...] -> (epsilon-greedy log P, state_out).
        None with a CNN (images run in torch)."""
        pre = self.pre.numpy_fn()
        prev_pre = self.prev_action_pre.numpy_fn() if self.prev_action_pre is not None else None
        if pre is None:
            return None
        encoder, step = self.encoder.numpy_fn(), self.core.numpy_step_fn()
        advantage = self.advantage_head.numpy_fn()
        value = self.value_head.numpy_fn() if self.value_head is not None else None
        epsilon, use_prev_reward = float(self.epsilon), self.use_prev_reward

        def fn(obs: Any, state: dict, prev_actions: Any, prev_rewards: np.ndarray):
            parts = [pre(obs)]
            if prev_pre is not None:
                parts.append(prev_pre(prev_actions))
            if use_prev_reward:
                parts.append(prev_rewards[:, None].astype(np.float32))
            x = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
            y, state_out = step(encoder(x.astype(np.float32, copy=False)), state)
            q = advantage(y)
            if value is not None:
                q = value(y) + q - q.mean(axis=-1, keepdims=True)
            return numpy_epsilon_greedy_logits(q, epsilon), state_out

        return fn
