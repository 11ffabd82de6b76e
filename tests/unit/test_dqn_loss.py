"""The DQN loss on fixed batches: the TD error of a hand-set network, importance weights,
C51's cross-entropy, and that minimizing it fits the target."""

from __future__ import annotations

import copy

import numpy as np
import torch
from gymnasium import spaces

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS, DefaultDQNTorchRLModule
from scalerl.algorithms.dqn.dqn_loss import dqn_loss
from scalerl.core.columns import Columns

OBS = spaces.Box(-1.0, 1.0, (2,), np.float32)


def q_module(**cfg) -> DefaultDQNTorchRLModule:
    torch.manual_seed(0)
    return DefaultDQNTorchRLModule(
        OBS, spaces.Discrete(2), model_config={"fcnet_hiddens": [8], **cfg}
    )


def fixed_batch() -> dict:
    return {
        Columns.OBS: torch.tensor([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]]),
        Columns.ACTIONS: torch.tensor([0, 1, 1]),
        Columns.REWARDS: torch.tensor([1.0, 0.0, -1.0]),
        Columns.NEXT_OBS: torch.tensor([[0.2, 0.2], [0.0, 0.1], [0.9, 0.9]]),
        Columns.TERMINATEDS: torch.tensor([False, False, True]),
        Columns.DISCOUNTS: torch.tensor([0.99, 0.9801, 0.99]),
    }


def test_td_errors_match_a_hand_computation():
    m = q_module(dueling=False)
    target = copy.deepcopy(m)
    b = fixed_batch()
    loss, td, _ = dqn_loss(m, target, b, double_q=True)
    with torch.no_grad():
        q = m.compute_q_values(b)[QF_PREDS]
        q_next = m.compute_q_values({Columns.OBS: b[Columns.NEXT_OBS]})[QF_PREDS]
    y = (
        b[Columns.REWARDS]
        + b[Columns.DISCOUNTS] * (~b[Columns.TERMINATEDS]).float() * q_next.max(-1).values
    )
    expected = (q[torch.arange(3), b[Columns.ACTIONS]] - y).abs()
    torch.testing.assert_close(td, expected)
    huber = torch.where(expected < 1, 0.5 * expected**2, expected - 0.5)
    torch.testing.assert_close(loss, huber.mean())
    # Importance weights scale each sample's loss.
    b[Columns.WEIGHTS] = torch.tensor([1.0, 0.0, 0.0])
    weighted, _, _ = dqn_loss(m, target, b)
    torch.testing.assert_close(weighted, huber[0] / 3)


def test_minimizing_the_loss_fits_the_targets():
    """Against a frozen target network Q(s, a) moves to y = r + gamma^n (1 - done) max Q'
    (for C51 too: inside the support the projection keeps the target's mean)."""
    for cfg in ({"dueling": True}, {"num_atoms": 21, "v_min": -3.0, "v_max": 3.0}):
        m = q_module(**cfg)
        target = copy.deepcopy(m)
        b = fixed_batch()
        with torch.no_grad():
            q_next = (
                target.compute_q_values({Columns.OBS: b[Columns.NEXT_OBS]})[QF_PREDS].max(-1).values
            )
        y = b[Columns.REWARDS] + b[Columns.DISCOUNTS] * (~b[Columns.TERMINATEDS]).float() * q_next

        first = gap(m, b, y)
        opt = torch.optim.Adam(m.parameters(), lr=2e-2)
        for _ in range(150):
            loss, _, _ = dqn_loss(m, target, b, double_q=False)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert gap(m, b, y) < 0.1 * first, (cfg, first, gap(m, b, y))


def gap(m, b, y) -> float:
    """mean |Q(s, a) - y| over the batch."""
    with torch.no_grad():
        q = m.compute_q_values(b)[QF_PREDS][torch.arange(3), b[Columns.ACTIONS]]
    return float((q - y).abs().mean())
