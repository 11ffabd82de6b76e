"""DQN targets against hand-computed values: (double) Q targets, the C51 projection, and
R2D2's value rescaling (issue 4, acceptance 1)."""

from __future__ import annotations

import torch

from scalerl.algorithms.dqn.targets import (
    c51_target_probs,
    inverse_value_rescale,
    q_targets,
    value_rescale,
)


def test_q_targets_plain_and_double():
    q_target = torch.tensor([[1.0, 5.0], [2.0, 0.0]])
    q_online = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    r = torch.tensor([1.0, -1.0])
    disc = torch.tensor([0.9, 0.81])
    done = torch.tensor([False, True])
    # Plain: max of the target net. Second row terminated: no bootstrap.
    torch.testing.assert_close(
        q_targets(q_target, r, disc, done), torch.tensor([1 + 0.9 * 5, -1.0])
    )
    # Double: the online net picks a* = 0 in row 0, the target net evaluates it (1.0).
    torch.testing.assert_close(
        q_targets(q_target, r, disc, done, q_next_online=q_online),
        torch.tensor([1 + 0.9 * 1, -1.0]),
    )


def test_c51_projection_by_hand():
    # Atoms -1, 0, 1. Next distribution: all mass on atom 1 (value 0) and atom 2 (value 1).
    probs = torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    r = torch.tensor([0.5, 0.0, 2.0])
    disc = torch.tensor([1.0, 0.5, 1.0])
    done = torch.tensor([False, True, False])
    target = c51_target_probs(probs, r, disc, done, v_min=-1.0, v_max=1.0)
    # Row 0: 0 -> 0.5 (half to atom 1, half to atom 2), 1 -> 1.5 clipped to 1.
    torch.testing.assert_close(target[0], torch.tensor([0.0, 0.25, 0.75]))
    # Row 1: terminated, every atom -> r = 0: all mass on atom 1.
    torch.testing.assert_close(target[1], torch.tensor([0.0, 1.0, 0.0]))
    # Row 2: r = 2 pushes everything past v_max: all mass on the top atom.
    torch.testing.assert_close(target[2], torch.tensor([0.0, 0.0, 1.0]))


def test_c51_projection_keeps_mass_and_mean():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(64, 51, generator=g), dim=-1)
    r = torch.randn(64, generator=g) * 0.5
    disc = torch.full((64,), 0.5)  # |r + 0.5 z| < 10: no clipping at the support edges
    done = torch.rand(64, generator=g) < 0.3
    target = c51_target_probs(probs, r, disc, done, v_min=-10.0, v_max=10.0)
    torch.testing.assert_close(target.sum(-1), torch.ones(64))
    atoms = torch.linspace(-10.0, 10.0, 51)
    # Inside the support the projection preserves the mean: E[R + gamma z].
    expected = r + disc * (~done).float() * (probs * atoms).sum(-1)
    torch.testing.assert_close((target * atoms).sum(-1), expected, atol=1e-4, rtol=0)


def test_value_rescaling_and_its_inverse():
    x = torch.tensor([-1000.0, -10.0, -1.0, 0.0, 0.5, 3.0, 250.0])
    h = value_rescale(x)
    torch.testing.assert_close(h[3], torch.tensor(0.0))
    torch.testing.assert_close(h[5], torch.tensor(1.0 + 3e-3))  # sqrt(4) - 1 + eps * 3
    torch.testing.assert_close(inverse_value_rescale(h), x, rtol=1e-4, atol=1e-4)
    assert (h[1:] > h[:-1]).all()  # monotone
