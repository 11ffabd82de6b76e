"""The default Q-network of DQN, with the Rainbow parts as options (Hessel et al. 2018).

    features  = MLP(ObsPreprocessor(o))                          (fcnet_hiddens; CNN for images)
    dueling   : Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')      (Wang et al. 2016)
    num_atoms : Z(s, a) = softmax over atoms z_1..z_K in [v_min, v_max], Q = sum_k p_k z_k
                (Bellemare et al. 2017); dueling then combines the logits per atom
    noisy     : the heads are NoisyLinear layers with `sigma0` (Fortunato et al. 2018)

DQNConfig passes these settings in `model_config` (keys `dueling`, `num_atoms`, `v_min`,
`v_max`, `noisy`, `sigma0`). `ACTION_DIST_INPUTS` are the Q-values, so the greedy action
of the categorical over them is argmax_a Q(s, a).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from scalerl.core.models import ObsPreprocessor, mlp
from scalerl.core.models.initializers import init_layers, reject_unsupported
from scalerl.core.models.noisy import NoisyLinear
from scalerl.core.rl_module import Columns, DefaultModelConfig, RLModule
from scalerl.core.rl_module.default_model_config import POLICY_HEAD_SETTINGS
from scalerl.utils.errors import ConfigError

QF_PREDS = "qf_preds"  # [B, A]
QF_LOGITS = "qf_logits"  # [B, A, K] (distributional only)
QF_PROBS = "qf_probs"  # [B, A, K] (distributional only)
DQN_MODEL_DEFAULTS = {
    "dueling": True,
    "num_atoms": 1,
    "v_min": -10.0,
    "v_max": 10.0,
    "noisy": False,
    "sigma0": 0.5,
}


DEFAULTS = dataclasses.asdict(DefaultModelConfig())
# What noisy heads (NoisyLinear layers) do not take: hidden layers, initializers.
HEAD_SETTINGS = [k for k in POLICY_HEAD_SETTINGS if k.startswith("head_fcnet") and "activ" not in k]


class DefaultDQNTorchRLModule(RLModule):
    """Q(s, .) for a Discrete action space (RLlib's `DefaultDQNTorchRLModule`)."""

    def setup(self) -> None:
        cfg = {
            **dataclasses.asdict(DefaultModelConfig()),
            "fcnet_activation": "relu",
            **DQN_MODEL_DEFAULTS,
            **self.model_config,
        }
        if not hasattr(self.action_space, "n") or hasattr(self.action_space, "nvec"):
            raise ConfigError(
                f"DQN needs a Discrete action space; got {self.action_space}. For Box actions "
                "use SAC (or PPO)."
            )
        self.num_actions = int(self.action_space.n)
        self.action_start = int(getattr(self.action_space, "start", 0))  # Discrete(n, start)
        self.num_atoms = int(cfg["num_atoms"])
        self.dueling, self.noisy = bool(cfg["dueling"]), bool(cfg["noisy"])
        if self.num_atoms < 1 or (self.num_atoms > 1 and not cfg["v_min"] < cfg["v_max"]):
            raise ConfigError(
                f"`num_atoms` must be >= 1 (and `v_min` < `v_max` when > 1); got "
                f"num_atoms={cfg['num_atoms']}, v_min={cfg['v_min']}, v_max={cfg['v_max']}."
            )
        self.pre = ObsPreprocessor(self.observation_space, cfg)
        hiddens = list(cfg["fcnet_hiddens"])
        self.encoder = mlp(self.pre.out_dim, hiddens, cfg["fcnet_activation"])
        init_layers([self.encoder], cfg, "fcnet")
        feat = self.encoder.out_dim
        head_hiddens, head_act = list(cfg["head_fcnet_hiddens"]), cfg["head_fcnet_activation"]
        if self.noisy:
            reject_unsupported(cfg, DEFAULTS, HEAD_SETTINGS, "DQN's noisy heads")

        def head(out_dim: int) -> nn.Module:
            if self.noisy:
                return NoisyLinear(feat, out_dim, float(cfg["sigma0"]))
            return mlp(feat, head_hiddens, head_act, out_dim=out_dim, out_gain=1.0)

        self.advantage_head = head(self.num_actions * self.num_atoms)
        self.value_head = head(self.num_atoms) if self.dueling else None
        if not self.noisy:
            init_layers(
                [self.advantage_head, self.value_head or self.advantage_head], cfg, "head_fcnet"
            )
        self.register_buffer(
            "atoms", torch.linspace(float(cfg["v_min"]), float(cfg["v_max"]), self.num_atoms)
        )
        # The exploration rate travels with the weights: the learner sets it from the
        # epsilon schedule, EnvRunners receive it at every weight sync.
        self.register_buffer("epsilon", torch.tensor(1.0))

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new weight noise in the noisy heads (a no-op without `noisy`)."""
        for layer in self.modules():
            if isinstance(layer, NoisyLinear):
                layer.reset_noise(generator)

    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """{QF_PREDS: [B, A]} and, with atoms, {QF_LOGITS, QF_PROBS: [B, A, K]}."""
        features = self.encoder(self.pre(batch[Columns.OBS]))
        B = features.shape[0]
        logits = self.advantage_head(features).reshape(B, self.num_actions, self.num_atoms)
        if self.value_head is not None:
            value = self.value_head(features).reshape(B, 1, self.num_atoms)
            logits = value + logits - logits.mean(dim=1, keepdim=True)
        if self.num_atoms == 1:
            return {QF_PREDS: logits.squeeze(-1)}
        probs = torch.softmax(logits, dim=-1)
        return {QF_PREDS: (probs * self.atoms).sum(-1), QF_LOGITS: logits, QF_PROBS: probs}

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        q = self.compute_q_values(batch)[QF_PREDS]
        return {Columns.ACTION_DIST_INPUTS: q, QF_PREDS: q}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Epsilon-greedy over Q; noisy heads act with fresh weight noise instead."""
        if self.noisy:
            noisy = [m for m in self.modules() if isinstance(m, NoisyLinear)]
            modes = [m.training for m in noisy]
            for m in noisy:
                m.train()
                m.reset_noise()
            q = self.compute_q_values(batch)[QF_PREDS]
            for m, mode in zip(noisy, modes):
                m.train(mode)
        else:
            q = self.compute_q_values(batch)[QF_PREDS]
        actions = q.argmax(dim=-1)
        explore = torch.rand(actions.shape) < self.epsilon
        if explore.any():
            random = torch.randint(0, self.num_actions, actions.shape)
            actions = torch.where(explore, random, actions)
        return {
            Columns.ACTIONS: actions + self.action_start,
            Columns.ACTION_DIST_INPUTS: q,
            QF_PREDS: q,
        }

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.compute_q_values(batch)
