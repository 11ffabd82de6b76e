"""Noisy linear layers (Fortunato et al. 2018, "Noisy Networks for Exploration").

Factorized Gaussian noise: y = (mu_W + sigma_W * eps_W) x + mu_b + sigma_b * eps_b with
eps_W = f(eps_out) f(eps_in)^T, eps_b = f(eps_out), f(x) = sign(x) sqrt(|x|), and the
paper's initialization mu ~ U(-1/sqrt(p), 1/sqrt(p)), sigma = sigma0 / sqrt(p) (p = inputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class NoisyLinear(nn.Module):
    """A linear layer whose weights carry learned, factorized Gaussian noise.

    New noise is drawn by `reset_noise()` (the caller decides when: the paper draws it
    once per step when acting and once per update when learning). In `eval()` mode the
    layer is the mean layer: greedy evaluation without exploration noise.
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(
            torch.empty(out_features, in_features).uniform_(-bound, bound)
        )
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features), persistent=False)
        self.register_buffer("eps_out", torch.zeros(out_features), persistent=False)
        self.reset_noise()

    @staticmethod
    def _f(x: torch.Tensor) -> torch.Tensor:
        return x.sign() * x.abs().sqrt()

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new factorized Gaussian noise eps_in, eps_out (Fortunato et al., NoisyNet)."""
        device = self.weight_mu.device
        self.eps_in.copy_(self._f(torch.randn(self.in_features, generator=generator)).to(device))
        self.eps_out.copy_(self._f(torch.randn(self.out_features, generator=generator)).to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return nn.functional.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        bias = self.bias_mu + self.bias_sigma * self.eps_out
        return nn.functional.linear(x, weight, bias)
