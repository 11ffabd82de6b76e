"""EnsembleMLP: K stacked MLPs equal K separate ones; its hand-written backward equals
autograd; `detach_params` keeps gradients off the weights."""

from __future__ import annotations

import pytest
import torch

from scalerl.core.models.ensemble import EnsembleMLP
from scalerl.core.optim import Adam


def members_forward(net: EnsembleMLP, x: torch.Tensor) -> torch.Tensor:
    """The K members one by one, with plain matmuls (the output layer is [K, out, in])."""
    outs = []
    for k in range(net.num_members):
        h = x if x.dim() == 2 else x[k]
        for i, (w_name, b_name) in enumerate(net.names):
            w, b = getattr(net, w_name)[k], getattr(net, b_name)[k, 0]
            last = i == len(net.names) - 1
            h = h @ (w.t() if last else w) + b
            if not last:
                h = torch.tanh(h)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("out_dim", [1, 3])
@pytest.mark.parametrize("shared_input", [True, False])
def test_forward_and_backward(out_dim, shared_input):
    torch.manual_seed(0)
    net = EnsembleMLP(2, 5, [8, 6], "tanh", out_dim)
    Adam(net.parameters(), lr=1e-3)  # gives the parameters `.grad` views
    x = torch.randn(7, 5) if shared_input else torch.randn(2, 7, 5)
    y = net(x)
    assert y.shape == (2, 7, out_dim)
    torch.testing.assert_close(y, members_forward(net, x))
    g = torch.randn_like(y)
    # Autograd's gradients of sum(y * g), weights and input.
    x_auto = x.clone().requires_grad_(True)
    net.zero_grad(set_to_none=False)
    (net(x_auto) * g).sum().backward()
    expected = {n: p.grad.clone() for n, p in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.grad.fill_(7.0)  # overwritten, not accumulated
        out, cache = net.forward_cached(x)
        grad_x = net.backward(cache, g, input_grad=True)
    torch.testing.assert_close(out, y.detach())
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, expected[n], msg=n)
    # A shared input's gradient is the sum over the members'.
    torch.testing.assert_close(grad_x.sum(0) if shared_input else grad_x, x_auto.grad)


def test_detached_parameters_pass_gradients_to_the_input_only():
    net = EnsembleMLP(2, 3, [4], "relu", 1)
    x = torch.randn(5, 3, requires_grad=True)
    net(x, detach_params=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_members_start_different():
    net = EnsembleMLP(2, 3, [4], "relu", 1)
    assert not torch.equal(net.weight_0[0], net.weight_0[1])
