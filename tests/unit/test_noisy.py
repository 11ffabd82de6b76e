"""NoisyLinear (Fortunato et al. 2018): factorized noise, mean layer in eval mode, gradients
reach the noise scales."""

from __future__ import annotations

import math

import torch

from scalerl.core.models.noisy import NoisyLinear


def test_noise_is_factorized_and_resampled():
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3, sigma0=0.5)
    assert torch.allclose(layer.weight_sigma, torch.full((3, 4), 0.5 / math.sqrt(4)))
    x = torch.randn(8, 4)
    y1 = layer(x)
    eps_w = torch.outer(layer.eps_out, layer.eps_in)
    expected = x @ (layer.weight_mu + layer.weight_sigma * eps_w).T + (
        layer.bias_mu + layer.bias_sigma * layer.eps_out
    )
    torch.testing.assert_close(y1, expected)
    torch.testing.assert_close(layer(x), y1)  # same noise until reset
    layer.reset_noise()
    assert not torch.allclose(layer(x), y1)


def test_eval_mode_is_the_mean_layer():
    layer = NoisyLinear(5, 2).eval()
    x = torch.randn(3, 5)
    torch.testing.assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)


def test_noise_scale_is_learned():
    layer = NoisyLinear(3, 2)
    layer(torch.randn(4, 3)).pow(2).sum().backward()
    assert layer.weight_sigma.grad.abs().sum() > 0 and layer.bias_sigma.grad.abs().sum() > 0
    # The noise buffers are not weights: not in checkpoints.
    assert set(layer.state_dict()) == {"weight_mu", "bias_mu", "weight_sigma", "bias_sigma"}
