"""The default SAC module: a stochastic policy and K soft Q-functions (Haarnoja et al. 2018;
Christodoulou 2019 for Discrete actions).

    Box actions      pi(.|s)   = tanh(N(mu(s), sigma(s)^2)), actions in (-1, 1)^d
                                 (`normalize_actions` maps them to the Box bounds)
                     Q_k(s, a) = MLP_k([phi(s), a])
    Discrete actions pi(.|s)   = softmax(logits(s))
                     Q_k(s, .) = MLP_k(phi(s))                 one output per action

phi is `ObsPreprocessor` (one-hot, flatten, a CNN for images), so any observation space
works; the policy and the critics each have their own (a CNN is not shared between actor
and critic, whose losses differ), the K critics share theirs. The K = 2 (`twin_q`) or 1
critics are one `EnsembleMLP`: one batched matmul per layer for all of them. The target
critics are the learner's copy of `qf` (as DQN's target network).

log sigma is clipped to [-20, 2] (softlearning's bounds) in the action-distribution
inputs, so the torch and numpy forward passes and the learner see the same distribution.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from scalerl.core.distributions import Distribution, SquashedGaussian, dist_class_for
from scalerl.core.models import ObsPreprocessor, mlp
from scalerl.core.models.ensemble import EnsembleMLP
from scalerl.core.models.initializers import init_ensemble, init_layers, reject_unsupported
from scalerl.core.rl_module import Columns, DefaultModelConfig, RLModule
from scalerl.utils.errors import ConfigError

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
POLICY_PREFIXES = ("pi_pre.", "pi.")  # the state an EnvRunner needs to act
SAC_MODEL_DEFAULTS = {"fcnet_activation": "relu", "twin_q": True}  # hiddens: [64, 64]


def check_sac_action_space(space: gym.Space) -> None:
    """SAC's policies: a squashed Gaussian for a bounded float Box, a categorical for
    Discrete. Anything else is a ConfigError naming the space."""
    if isinstance(space, gym.spaces.Discrete):
        return
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if space.is_bounded():
            return
        raise ConfigError(
            f"SAC squashes Box actions into the Box's bounds, but {space} is unbounded; "
            "give the action space finite `low` and `high`."
        )
    raise ConfigError(
        f"SAC supports a Box (float, bounded) or a Discrete action space; got {space}. "
        "For other action spaces use PPO."
    )


class SoftQFunction(nn.Module):
    """Q_1..Q_K over shared observation features: [K, B] (Box) or [K, B, A] (Discrete)."""

    def __init__(self, observation_space: gym.Space, action_dim: int, out_dim: int, cfg: dict):
        super().__init__()
        self.pre = ObsPreprocessor(observation_space, cfg)
        self.action_dim = action_dim  # 0: Discrete, Q(s, .) has one output per action
        num_critics = 2 if cfg["twin_q"] else 1
        self.net = EnsembleMLP(
            num_critics,
            self.pre.out_dim + action_dim,
            list(cfg["fcnet_hiddens"]),
            cfg["fcnet_activation"],
            out_dim,
        )

    def features(self, obs: Any) -> torch.Tensor:
        """The observation features that the critics share (the preprocessor's output)."""
        return self.pre(obs)

    def forward(
        self, features: torch.Tensor, actions: torch.Tensor | None = None, detach_params=False
    ) -> torch.Tensor:
        x = features
        if self.action_dim:
            x = torch.cat([features, actions.reshape(len(actions), -1)], dim=-1)
        q = self.net(x, detach_params)
        return q.squeeze(-1) if self.action_dim else q


class DefaultSACTorchRLModule(RLModule):
    """Policy `pi` (with `pi_pre`) and critics `qf` (RLlib's `DefaultSACTorchRLModule`)."""

    def setup(self) -> None:
        cfg = {
            **dataclasses.asdict(DefaultModelConfig()),
            **SAC_MODEL_DEFAULTS,
            **self.model_config,
        }
        # Initializers: hidden layers "fcnet", output layers "head_fcnet"; no head hiddens.
        defaults = dataclasses.asdict(DefaultModelConfig())
        reject_unsupported(cfg, defaults, ["head_fcnet_hiddens"], "SAC")
        space = self.action_space
        check_sac_action_space(space)
        self.discrete = isinstance(space, gym.spaces.Discrete)
        if self.discrete:
            self.num_actions = int(space.n)
            self.action_start = int(space.start)
            self.action_dim, pi_out = 0, self.num_actions
            self.dist_cls: type[Distribution] = dist_class_for(space)
        else:
            self.action_dim = math.prod(space.shape)
            pi_out = 2 * self.action_dim
            self.dist_cls = SquashedGaussian.for_space(space)
        hiddens, activation = list(cfg["fcnet_hiddens"]), cfg["fcnet_activation"]
        self.pi_pre = ObsPreprocessor(self.observation_space, cfg)
        # A small output layer: near-uniform (Discrete) or N(0, 1) (Box) actions at first.
        self.pi = mlp(self.pi_pre.out_dim, hiddens, activation, out_dim=pi_out, out_gain=0.01)
        out_dim = self.num_actions if self.discrete else 1
        self.qf = SoftQFunction(self.observation_space, self.action_dim, out_dim, cfg)
        init_layers(list(self.pi.layers[:-1]), cfg, "fcnet")
        init_layers([self.pi.layers[-1]], cfg, "head_fcnet")
        init_ensemble(self.qf.net, cfg)

    # -- the parts the learner's optimizers own --------------------------------------------
    def actor_parameters(self) -> list[nn.Parameter]:
        """The policy's parameters (the actor optimizer's)."""
        return [*self.pi_pre.parameters(), *self.pi.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        """The Q-functions' parameters (the critic optimizer's)."""
        return list(self.qf.parameters())

    # -- weights: EnvRunners get the policy's only ------------------------------------------
    def _policy_tensors(self) -> dict[str, torch.Tensor]:
        # The state_dict entries of the policy (parameters and buffers are stable objects:
        # optimizers re-point their data, they do not replace them).
        return {
            **self.pi_pre.state_dict(prefix="pi_pre.", keep_vars=True),
            **self.pi.state_dict(prefix="pi.", keep_vars=True),
        }

    def get_policy_state(self) -> dict[str, np.ndarray]:
        """The policy's weights (all an EnvRunner acts with), as numpy copies: a third of
        the module with twin critics, and synced after every fragment."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self._policy_tensors().items()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Load the full weights, or the policy's alone (`get_policy_state`): then copied
        tensor by tensor, without `load_state_dict`'s walk over every submodule."""
        if not all(k.startswith(POLICY_PREFIXES) for k in state):
            super().set_state(state)
            return
        own = self._policy_tensors()
        if set(state) != set(own):
            raise KeyError(
                f"Policy weights do not fit {type(self).__name__}: got {sorted(state)}, "
                f"expected {sorted(own)}."
            )
        with torch.no_grad():
            for k, v in state.items():
                # np.array copies: arrays from Ray are read-only (torch warns on those).
                v = v if torch.is_tensor(v) else torch.from_numpy(np.array(v))
                if v.shape != own[k].shape:
                    raise ValueError(
                        f"`{k}` has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}."
                    )
                own[k].copy_(v)

    # -- policy ----------------------------------------------------------------------------
    def pi_inputs(self, obs: Any) -> torch.Tensor:
        """The action-distribution inputs: logits, or [mu, clipped log sigma]."""
        out = self.pi(self.pi_pre(obs))
        if self.discrete:
            return out
        mean, log_std = out.chunk(2, dim=-1)
        return torch.cat([mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1)

    def get_numpy_exploration_fn(self) -> Callable[[Any], np.ndarray] | None:
        pre = self.pi_pre.numpy_fn()
        if pre is None:
            return None  # a CNN: EnvRunners use the torch forward pass
        pi, d = self.pi.numpy_fn(), self.action_dim

        def dist_inputs(obs: Any) -> np.ndarray:
            out = pi(pre(obs))
            if d:
                np.clip(out[:, d:], LOG_STD_MIN, LOG_STD_MAX, out=out[:, d:])
            return out

        return dist_inputs

    def get_inference_action_dist_cls(self) -> type[Distribution]:
        """The policy's distribution: tanh-squashed Gaussian (Box) or Categorical (Discrete)."""
        return self.dist_cls

    def get_exploration_action_dist_cls(self) -> type[Distribution]:
        """The policy's distribution: tanh-squashed Gaussian (Box) or Categorical (Discrete)."""
        return self.dist_cls

    def get_train_action_dist_cls(self) -> type[Distribution]:
        """The policy's distribution: tanh-squashed Gaussian (Box) or Categorical (Discrete)."""
        return self.dist_cls

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Deterministic actions: tanh(mu) or argmax of the logits."""
        inputs = self.pi_inputs(batch[Columns.OBS])
        actions = self.dist_cls(inputs).deterministic_sample()
        return {Columns.ACTIONS: actions, Columns.ACTION_DIST_INPUTS: inputs}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Actions sampled from pi(.|s)."""
        inputs = self.pi_inputs(batch[Columns.OBS])
        return {
            Columns.ACTIONS: self.dist_cls(inputs).sample(),
            Columns.ACTION_DIST_INPUTS: inputs,
        }

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.pi_inputs(batch[Columns.OBS])}
