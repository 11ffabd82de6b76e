"""Diagonal Gaussians for Box actions: plain (PPO's default) and tanh-squashed (SAC's)."""

from __future__ import annotations

import math
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

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class _MeanLogStd(Distribution):
    """Inputs [mean, log_std] concatenated on the last axis, over the flattened Box."""

    shape: ClassVar[tuple[int, ...] | None] = None  # None: the last axis is the event

    def __init__(self, inputs: torch.Tensor):
        self.mean, self.log_std = inputs.chunk(2, dim=-1)
        self.std = self.log_std.exp()

    @classmethod
    def for_space(cls, space: gym.spaces.Box) -> type[Distribution]:
        # A vector Box needs no reshaping: the generic class serves it.
        return cls if len(space.shape) == 1 else cls.bind(space, shape=tuple(space.shape))

    @classmethod
    def input_dim(cls, space: gym.Space) -> int:
        return 2 * flat_size(space.shape)

    @classmethod
    def log_std_indices(cls, space: gym.Space) -> list[int]:
        d = flat_size(space.shape)
        return list(range(d, 2 * d))

    def _normal_logp(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - LOG_SQRT_2PI).sum(dim=-1)

    def _normal_kl(self, other: _MeanLogStd) -> torch.Tensor:
        var_ratio = (self.std / other.std).pow(2)
        mean_term = ((self.mean - other.mean) / other.std).pow(2)
        return 0.5 * (var_ratio + mean_term - 1.0 - var_ratio.log()).sum(dim=-1)

    @classmethod
    def _normal_sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean, log_std = np.split(inputs, 2, axis=-1)
        return mean + np.exp(log_std) * rng.standard_normal(mean.shape)


class DiagGaussian(_MeanLogStd):
    """Diagonal Gaussian over a Box of any shape (flattened); actions have the Box's shape."""

    has_gradients = True

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """mean + std * N(0, I), shaped like the action space (not clipped to its bounds)."""
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
        return unflatten_event(self.mean + self.std * noise, self.shape)

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return unflatten_event(cls._normal_sample_numpy(inputs, rng).astype(np.float32), cls.shape)

    def deterministic_sample(self) -> torch.Tensor:
        """The mean, shaped like the action space."""
        return unflatten_event(self.mean, self.shape)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """The diagonal Normal's log-density of `actions`, summed over dimensions, per row."""
        return self._normal_logp(flatten_event(actions, self.shape))

    def entropy(self) -> torch.Tensor:
        """H = sum of log_std + 1/2 + log sqrt(2 pi) over dimensions, per row."""
        return (self.log_std + 0.5 + LOG_SQRT_2PI).sum(dim=-1)

    def kl(self, other: DiagGaussian) -> torch.Tensor:
        return self._normal_kl(other)

    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # With z = (a - mu) / std: d log p / d mu = z / std, d log p / d log_std = z^2 - 1.
        z = (flatten_event(actions, self.shape) - self.mean) / self.std
        z2 = z * z
        logp = (-0.5 * z2 - self.log_std - LOG_SQRT_2PI).sum(dim=-1)
        return logp, torch.cat([z / self.std, z2 - 1.0], dim=-1)

    def entropy_grad(self) -> torch.Tensor:
        # H = sum(log_std) + const: no dependence on the mean.
        return torch.cat([torch.zeros_like(self.mean), torch.ones_like(self.log_std)], dim=-1)

    def kl_grad(self, old: DiagGaussian) -> torch.Tensor:
        # KL[old || self] = 0.5 sum(r + m - 1 - log r), r = old.std^2 / std^2,
        # m = (old.mean - mean)^2 / std^2: d/d mean = (mean - old.mean) / std^2 and
        # d/d log_std = 1 - r - m.
        var = self.std * self.std
        diff = self.mean - old.mean
        r_plus_m = (old.std * old.std + diff * diff) / var
        return torch.cat([diff / var, 1.0 - r_plus_m], dim=-1)


class SquashedGaussian(_MeanLogStd):
    """a = tanh(u), u ~ N(mean, std^2): actions in (-1, 1), for algorithms that want
    bounded actions with a density (SAC). `normalize_actions` maps them to the Box bounds.

    log pi(a) = log N(u) - sum_i log(1 - tanh(u_i)^2)  (the log-det-Jacobian of tanh).
    Not PPO's default: its entropy has no closed form (SAC estimates it as -log pi of
    samples), so `entropy()` raises. The KL equals the Gaussians' KL (KL is invariant
    under the same invertible map applied to both).
    """

    @staticmethod
    def _log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), exact and stable for large |u|.
        return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(dim=-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """tanh(mean + std * N(0, I)), in (-1, 1), shaped like the action space."""
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
        return unflatten_event(torch.tanh(self.mean + self.std * noise), self.shape)

    def rsample_and_logp(
        self, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized sample (gradients flow to the inputs) and its log-probability,
        computed from the pre-tanh value (no atanh of a rounded action)."""
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
        u = self.mean + self.std * noise
        logp = self._normal_logp(u) - self._log_det_jacobian(u)
        return unflatten_event(torch.tanh(u), self.shape), logp

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = cls._normal_sample_numpy(inputs, rng)
        return unflatten_event(np.tanh(u).astype(np.float32), cls.shape)

    def deterministic_sample(self) -> torch.Tensor:
        """tanh(mean), shaped like the action space."""
        return unflatten_event(torch.tanh(self.mean), self.shape)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a) with the tanh change of variables: log N(atanh a) - log |det da/du|.

        Actions at exactly +-1 are pulled just inside so that atanh stays finite.
        """
        # Actions at +-1 (float rounding of tanh) would give u = +-inf: pull them inside.
        a = flatten_event(actions, self.shape).to(self.mean.dtype)
        eps = torch.finfo(a.dtype).eps
        u = torch.atanh(a.clamp(-1.0 + eps, 1.0 - eps))
        return self._normal_logp(u) - self._log_det_jacobian(u)

    def entropy(self) -> torch.Tensor:
        """Always raises NotImplementedError: there is no closed form; SAC uses -logp of samples."""
        raise NotImplementedError(
            "A tanh-squashed Gaussian has no closed-form entropy; estimate it as -logp of "
            "samples (`rsample_and_logp`), as SAC does."
        )

    def kl(self, other: SquashedGaussian) -> torch.Tensor:
        return self._normal_kl(other)
