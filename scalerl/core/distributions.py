"""Action distributions, one class per action-space kind.

Each is built from the module's `action_dist_inputs` tensor. Sampling takes an
explicit generator, so EnvRunners are reproducible from their seed alone.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch


class Distribution:
    def __init__(self, inputs: torch.Tensor):
        raise NotImplementedError

    @staticmethod
    def input_dim(space: gym.Space) -> int:
        raise NotImplementedError

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def deterministic_sample(self) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def sample_numpy(inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample from the distribution with inputs `inputs`, on the host.

        EnvRunners use this: for the small batches of one env step, numpy's per-call
        overhead is several times lower than torch's.
        """
        raise NotImplementedError

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError

    def kl(self, other: Distribution) -> torch.Tensor:
        raise NotImplementedError

    # Gradients with respect to this distribution's inputs, for learners that backpropagate
    # by hand (see `scalerl.algorithms.ppo.manual_gradients`). Each is per sample: [B, D].
    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a), d log pi(a) / d inputs)."""
        raise NotImplementedError

    def entropy_grad(self) -> torch.Tensor:
        """d H[pi] / d inputs."""
        raise NotImplementedError

    def kl_grad(self, old: Distribution) -> torch.Tensor:
        """d KL[old || self] / d (self's inputs)."""
        raise NotImplementedError


class Categorical(Distribution):
    """Categorical over `n` actions from unnormalized logits."""

    def __init__(self, inputs: torch.Tensor):
        self.logits = torch.log_softmax(inputs, dim=-1)

    @staticmethod
    def input_dim(space: gym.Space) -> int:
        return int(space.n)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        # Gumbel-max: argmax(logits + G) is a categorical sample, and far cheaper than
        # torch.distributions for the small batches of an EnvRunner step.
        u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device).clamp_(
            1e-20, 1.0
        )
        return (self.logits - torch.log(-torch.log(u))).argmax(dim=-1)

    @staticmethod
    def sample_numpy(inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (inputs + rng.gumbel(size=inputs.shape)).argmax(axis=-1)

    def deterministic_sample(self) -> torch.Tensor:
        return self.logits.argmax(dim=-1)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        # Masked actions have logit -inf: clamp so that 0 * log 0 counts as 0, not NaN.
        logits = self.logits.clamp(min=torch.finfo(self.logits.dtype).min)
        return -(logits.exp() * logits).sum(dim=-1)

    def kl(self, other: Categorical) -> torch.Tensor:
        lo = torch.finfo(self.logits.dtype).min
        p, q = self.logits.clamp(min=lo), other.logits.clamp(min=lo)
        return (p.exp() * (p - q)).sum(dim=-1)

    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # log p_a = z_a - logsumexp(z), so d/dz = onehot(a) - softmax(z).
        onehot = torch.zeros_like(self.logits).scatter_(-1, actions.long().unsqueeze(-1), 1.0)
        return (self.logits * onehot).sum(dim=-1), onehot.sub_(self.logits.exp())

    def entropy_grad(self) -> torch.Tensor:
        # H = -sum_j p_j log p_j, so dH/dz_k = -p_k (log p_k + H).
        logits = self.logits.clamp(min=torch.finfo(self.logits.dtype).min)
        p = logits.exp()
        entropy = -(p * logits).sum(dim=-1, keepdim=True)
        return -p * (logits + entropy)

    def kl_grad(self, old: Categorical) -> torch.Tensor:
        # KL = sum_j q_j (log q_j - log p_j) with q fixed, so d/dz_k = p_k - q_k.
        return self.logits.exp() - old.logits.exp()


class DiagGaussian(Distribution):
    """Diagonal Gaussian; inputs are [mean, log_std] concatenated on the last axis."""

    def __init__(self, inputs: torch.Tensor):
        self.mean, self.log_std = inputs.chunk(2, dim=-1)
        self.std = self.log_std.exp()

    @staticmethod
    def input_dim(space: gym.Space) -> int:
        return 2 * int(math.prod(space.shape))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
        return self.mean + self.std * noise

    @staticmethod
    def sample_numpy(inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean, log_std = np.split(inputs, 2, axis=-1)
        return (mean + np.exp(log_std) * rng.standard_normal(mean.shape)).astype(np.float32)

    def deterministic_sample(self) -> torch.Tensor:
        return self.mean

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(dim=-1)

    def kl(self, other: DiagGaussian) -> torch.Tensor:
        var_ratio = (self.std / other.std).pow(2)
        mean_term = ((self.mean - other.mean) / other.std).pow(2)
        return 0.5 * (var_ratio + mean_term - 1.0 - var_ratio.log()).sum(dim=-1)

    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # With z = (a - mu) / std: d log p / d mu = z / std, d log p / d log_std = z^2 - 1.
        z = (actions - self.mean) / self.std
        z2 = z * z
        logp = (-0.5 * z2 - self.log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
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


def dist_class_for(space: gym.Space) -> type[Distribution]:
    """The default action distribution for an action space."""
    if isinstance(space, gym.spaces.Discrete):
        return Categorical
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return DiagGaussian
    raise ValueError(
        f"No action distribution for action space {space}: supported are Discrete "
        "(categorical) and 1-D Box (diagonal Gaussian)."
    )
