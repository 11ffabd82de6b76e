"""An autoregressive action module: a2 is drawn given the a1 just drawn, p(a1|s) p(a2|s, a1).

Works with the unchanged PPO learner, which builds pi_old from the recorded
`ACTION_DIST_INPUTS` and pi from `forward_train`'s, both as `dist_cls(inputs).logp(actions)`:

- exploration/inference: draw a1 from head 1, then a2 from head 2 fed a1; return the actions
  and `ACTION_DIST_INPUTS = concat(logits1, logits2 given that a1)`;
- training: feed head 2 the a1 of `batch[ACTIONS]` (teacher forcing), giving the same inputs;
- `TwoStepCategorical` reads those inputs as two categoricals: log p(a1, a2) =
  log p1(a1) + log p2(a2 | a1).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from scalerl.core.distributions import Distribution
from scalerl.core.rl_module import Columns, RLModule, ValueFunctionAPI
from scalerl.utils.errors import ConfigError


class TwoStepCategorical(Distribution):
    """p(a1) p(a2 | a1) from `concat(logits1, logits2 given the a1 taken)` (`n1` logits first).

    Its inputs only describe a2's distribution for one a1, the one the module drew (or, in
    training, the one recorded), so it cannot draw a fresh (a1, a2): the module samples.
    Entropy and KL are those of the two factors at that a1, single-sample estimates of
    the joint's (a1 was drawn from the old policy).
    """

    n1: int = 0  # set by `for_sizes`

    @staticmethod
    @cache
    def for_sizes(n1: int) -> type[TwoStepCategorical]:
        """The subclass for a first component with `n1` choices."""
        return type(f"TwoStepCategorical{n1}", (TwoStepCategorical,), {"n1": n1})

    def __init__(self, inputs: torch.Tensor):
        self.logits1 = torch.log_softmax(inputs[..., : self.n1], dim=-1)
        self.logits2 = torch.log_softmax(inputs[..., self.n1 :], dim=-1)

    @staticmethod
    def input_dim(space: gym.Space) -> int:
        return int(space[0].n) + int(space[1].n)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Always raises NotImplementedError: a2 depends on the a1 drawn, so the module samples
        (a1, a2) itself and returns them as `Columns.ACTIONS`.
        """
        raise NotImplementedError(
            "TwoStepCategorical cannot draw a2 for a fresh a1: the module samples (a1, a2) "
            "and returns them as Columns.ACTIONS."
        )

    deterministic_sample = sample

    def logp(self, actions: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """log p(a1, a2) = log p1(a1) + log p2(a2 | a1), for `actions` = (a1, a2)."""
        a1, a2 = actions
        logp1 = self.logits1.gather(-1, a1.long().unsqueeze(-1)).squeeze(-1)
        return logp1 + self.logits2.gather(-1, a2.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """H[p1] + H[p2 | the a1 taken], per row."""
        return _entropy(self.logits1) + _entropy(self.logits2)

    def kl(self, other: TwoStepCategorical) -> torch.Tensor:
        return _kl(self.logits1, other.logits1) + _kl(self.logits2, other.logits2)


def _entropy(logp: torch.Tensor) -> torch.Tensor:
    return -(logp.exp() * logp).sum(-1)


def _kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    return (logp.exp() * (logp - logq)).sum(-1)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class AutoregressiveActionsModule(RLModule, ValueFunctionAPI):
    """Tuple(Discrete(n1), Discrete(n2)) actions over a flat Box observation.

    Head 1 maps observation features to a1's logits; head 2 maps the features and a one-hot
    of a1 to a2's logits. A separate MLP gives V(s).

    model_config: "hidden" (64, width of every hidden layer), "autoregressive" (True;
    False hides a1 from head 2: a baseline with independent heads, same network otherwise).
    """

    def setup(self) -> None:
        space = self.action_space
        if not (
            isinstance(space, gym.spaces.Tuple)
            and len(space) == 2
            and all(isinstance(s, gym.spaces.Discrete) for s in space)
        ):
            raise ConfigError(
                f"AutoregressiveActionsModule needs a Tuple(Discrete, Discrete) action space, "
                f"got {space}."
            )
        self.n1, self.n2 = int(space[0].n), int(space[1].n)
        obs_dim = int(np.prod(self.observation_space.shape))
        hidden = int(self.model_config.get("hidden", 64))
        self.autoregressive = bool(self.model_config.get("autoregressive", True))
        self.encoder = nn.Sequential(_mlp([obs_dim, hidden, hidden]), nn.Tanh())
        self.head1 = nn.Linear(hidden, self.n1)
        self.head2 = _mlp([hidden + self.n1, hidden, self.n2])
        for head in (self.head1, self.head2[-1]):
            nn.init.orthogonal_(head.weight, gain=0.01)  # near-uniform first policy
            nn.init.zeros_(head.bias)
        self.value = _mlp([obs_dim, hidden, hidden, 1])

    def _features(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.encoder(batch[Columns.OBS].flatten(1).float())

    def a2_logits(self, features: torch.Tensor, a1: torch.Tensor) -> torch.Tensor:
        """Head 2: a2's logits given the features and the a1 taken."""
        a1_input = nn.functional.one_hot(a1.long(), self.n1).to(features.dtype)
        if not self.autoregressive:
            a1_input = torch.zeros_like(a1_input)
        return self.head2(torch.cat([features, a1_input], dim=-1))

    def _act(self, batch: dict[str, Any], explore: bool) -> dict[str, Any]:
        features = self._features(batch)
        logits1 = self.head1(features)
        a1 = _draw(logits1, explore)
        logits2 = self.a2_logits(features, a1)
        a2 = _draw(logits2, explore)
        return {
            Columns.ACTIONS: (a1, a2),
            Columns.ACTION_DIST_INPUTS: torch.cat([logits1, logits2], dim=-1),
        }

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._act(batch, explore=False)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._act(batch, explore=True)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features = self._features(batch)
        a1 = batch[Columns.ACTIONS][0]  # teacher forcing: the a1 that was taken
        logits = torch.cat([self.head1(features), self.a2_logits(features, a1)], dim=-1)
        return {Columns.ACTION_DIST_INPUTS: logits}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.value(batch[Columns.OBS].flatten(1).float()).squeeze(-1)

    def get_train_action_dist_cls(self) -> type[Distribution]:
        """`TwoStepCategorical` with this module's `n1` (for all three phases)."""
        return TwoStepCategorical.for_sizes(self.n1)

    get_exploration_action_dist_cls = get_train_action_dist_cls
    get_inference_action_dist_cls = get_train_action_dist_cls


def _draw(logits: torch.Tensor, explore: bool) -> torch.Tensor:
    if not explore:
        return logits.argmax(-1)
    return torch.distributions.Categorical(logits=logits).sample()
