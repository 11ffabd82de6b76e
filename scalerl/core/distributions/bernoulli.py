"""Bernoulli: independent bits, for MultiBinary actions."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from scalerl.core.distributions.base import (
    Distribution,
    flat_size,
    flatten_event,
    unflatten_event,
)


class Bernoulli(Distribution):
    """Independent Bernoullis, one logit x per bit: p(1) = sigmoid(x).

    Bound to a MultiBinary space (any shape), actions have its shape and int8 0/1 values.
    """

    has_gradients = True
    shape: ClassVar[tuple[int, ...] | None] = None

    def __init__(self, inputs: torch.Tensor):
        self.logits = inputs

    @classmethod
    def for_space(cls, space: gym.spaces.MultiBinary) -> type[Bernoulli]:
        """This class bound to a MultiBinary `space`: one independent Bernoulli per element."""
        return cls.bind(space, shape=tuple(space.shape))

    @classmethod
    def input_dim(cls, space: gym.Space) -> int:
        return flat_size(space.shape)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """0/1 actions (int8) shaped like the space, each 1 with probability sigmoid(logit)."""
        u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device)
        return unflatten_event((u < torch.sigmoid(self.logits)).to(torch.int8), self.shape)

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # sigmoid(x) written so that exp never overflows.
        e = np.exp(-np.abs(inputs))
        p = np.where(inputs >= 0, 1.0, e) / (1.0 + e)
        return unflatten_event((rng.random(inputs.shape) < p).astype(np.int8), cls.shape)

    def deterministic_sample(self) -> torch.Tensor:
        """The mode: 1 where the logit is positive, else 0 (int8, shaped like the space)."""
        return unflatten_event((self.logits > 0).to(torch.int8), self.shape)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """log p(a) = sum of a x - softplus(x) over the elements, per row."""
        # log p(a) = a log sigmoid(x) + (1 - a) log sigmoid(-x) = a x - softplus(x).
        a = flatten_event(actions, self.shape).to(self.logits.dtype)
        return (a * self.logits - F.softplus(self.logits)).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        """H = sum of softplus(x) - x sigmoid(x) over the elements, per row."""
        # H = softplus(x) - x sigmoid(x).
        x = self.logits
        return (F.softplus(x) - x * torch.sigmoid(x)).sum(dim=-1)

    def kl(self, other: Bernoulli) -> torch.Tensor:
        # KL = p (log p - log q) + (1 - p) (log(1 - p) - log(1 - q)), with
        # log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x).
        x, y = self.logits, other.logits
        p = torch.sigmoid(x)
        kl = p * (F.softplus(-y) - F.softplus(-x)) + (1 - p) * (F.softplus(y) - F.softplus(x))
        return kl.sum(dim=-1)

    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # d/dx (a x - softplus(x)) = a - sigmoid(x).
        a = flatten_event(actions, self.shape).to(self.logits.dtype)
        logp = (a * self.logits - F.softplus(self.logits)).sum(dim=-1)
        return logp, a - torch.sigmoid(self.logits)

    def entropy_grad(self) -> torch.Tensor:
        # dH/dx = sigmoid(x) - sigmoid(x) - x p (1 - p) = -x p (1 - p).
        p = torch.sigmoid(self.logits)
        return -self.logits * p * (1 - p)

    def kl_grad(self, old: Bernoulli) -> torch.Tensor:
        # KL[q || p] = const - q log p - (1 - q) log(1 - p): d/dx = p - q.
        return torch.sigmoid(self.logits) - torch.sigmoid(old.logits)
