"""SAC losses on fixed batches against hand-computed values (issue 4, acceptance 1)."""

from __future__ import annotations

import math

import torch

from scalerl.algorithms.sac.sac_loss import (
    actor_loss,
    alpha_loss,
    auto_target_entropy,
    critic_loss,
    discrete_actor_loss,
    discrete_alpha_loss,
    discrete_soft_target,
    soft_target,
)

R = torch.tensor([1.0, -0.5])
DISC = torch.tensor([0.99, 0.99])
DONE = torch.tensor([False, True])


def test_soft_target_and_critic_loss():
    y = soft_target(
        R,
        DISC,
        DONE,
        next_q_min=torch.tensor([2.0, 5.0]),
        next_logp=torch.tensor([-1.0, 0.3]),
        alpha=0.2,
    )
    # Row 0: 1 + 0.99 (2 + 0.2); row 1 terminated: just r.
    torch.testing.assert_close(y, torch.tensor([1 + 0.99 * 2.2, -0.5]))
    q1 = torch.tensor([3.0, 0.0], requires_grad=True)
    q2 = torch.tensor([3.5, -1.0], requires_grad=True)
    loss, td = critic_loss(q1, q2, y)
    e1, e2 = q1.detach() - y, q2.detach() - y
    torch.testing.assert_close(loss, (0.5 * e1**2 + 0.5 * e2**2).mean())
    torch.testing.assert_close(td, e1.abs())
    loss.backward()
    torch.testing.assert_close(q1.grad, e1 / 2)  # d/dq1 of the mean over 2 samples
    weighted, _ = critic_loss(q1, q2, y, weights=torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(weighted, (0.5 * e1[1] ** 2 + 0.5 * e2[1] ** 2) * 2 / 2)


def test_actor_and_alpha_losses():
    logp = torch.tensor([-1.0, -3.0])
    q_min = torch.tensor([2.0, 1.0])
    torch.testing.assert_close(
        actor_loss(q_min, logp, 0.5), torch.tensor(((-0.5 - 2) + (-1.5 - 1)) / 2)
    )
    log_alpha = torch.zeros((), requires_grad=True)
    target = auto_target_entropy(action_dim=2)
    assert target == -2.0
    loss = alpha_loss(log_alpha, logp, target)
    loss.backward()
    # d/d log_alpha = -mean(logp + H) = -mean(-3, -5) = 4 > 0: entropy (2 on average) is
    # above the target (-2), so gradient descent lowers alpha.
    torch.testing.assert_close(log_alpha.grad, torch.tensor(4.0))


def test_discrete_losses():
    probs = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    logp = probs.log()
    q_min = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    y = discrete_soft_target(R, DISC, DONE, probs, logp, q_min, alpha=0.1)
    v0 = (probs[0] * (q_min[0] - 0.1 * logp[0])).sum()
    torch.testing.assert_close(y, torch.stack([1 + 0.99 * v0, torch.tensor(-0.5)]))
    expected = (probs * (0.1 * logp - q_min)).sum(-1).mean()
    torch.testing.assert_close(discrete_actor_loss(probs, logp, q_min, 0.1), expected)
    target = auto_target_entropy(num_actions=2)
    torch.testing.assert_close(torch.tensor(target), torch.tensor(0.98 * math.log(2)))
    log_alpha = torch.zeros((), requires_grad=True)
    discrete_alpha_loss(log_alpha, probs, logp, target).backward()
    neg_h = (probs * logp).sum(-1)
    torch.testing.assert_close(log_alpha.grad, -(neg_h + target).mean())
