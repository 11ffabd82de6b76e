"""The SAC losses (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"),
and their discrete-action form (Christodoulou 2019), as plain functions of tensors.

Continuous actions, twin critics Q1, Q2 with target copies Q1', Q2', a' ~ pi(.|s'):
    y       = r + gamma^n (1 - done) (min(Q1'(s', a'), Q2'(s', a')) - alpha log pi(a'|s'))
    J_Q     = 1/2 E[(Q1(s, a) - y)^2] + 1/2 E[(Q2(s, a) - y)^2]
    J_pi    = E[alpha log pi(a~|s) - min(Q1(s, a~), Q2(s, a~))],  a~ reparameterized
    J_alpha = -E[log alpha (log pi(a~|s) + H_target)]      (H_target = -dim(A) by "auto")

Discrete actions replace the expectations over actions by sums with pi(.|s).
"""

from __future__ import annotations

import math

import torch


def soft_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminateds: torch.Tensor,
    next_q_min: torch.Tensor,
    next_logp: torch.Tensor,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    """y = r + gamma^n (1 - done) (min Q'(s', a') - alpha log pi(a'|s')), [B]."""
    return rewards + discounts * (1.0 - terminateds.float()) * (next_q_min - alpha * next_logp)


def critic_loss(
    q1: torch.Tensor, q2: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(J_Q, per-sample |TD error| of Q1 for prioritized replay). `y` carries no gradient."""
    y = y.detach()
    per_sample = 0.5 * (q1 - y).pow(2) + 0.5 * (q2 - y).pow(2)
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean(), (q1 - y).detach().abs()


def actor_loss(q_min_pi: torch.Tensor, logp_pi: torch.Tensor, alpha: torch.Tensor | float):
    """J_pi = E[alpha log pi(a~|s) - min Q(s, a~)]."""
    return (alpha * logp_pi - q_min_pi).mean()


def alpha_loss(log_alpha: torch.Tensor, logp_pi: torch.Tensor, target_entropy: float):
    """J_alpha = -E[log alpha (log pi + H_target)]: alpha grows while the entropy
    (-log pi) is below the target and shrinks above it."""
    return -(log_alpha * (logp_pi.detach() + target_entropy)).mean()


def auto_target_entropy(action_dim: int | None = None, num_actions: int | None = None) -> float:
    """ "auto": -dim(A) for Box actions; 0.98 log |A| for Discrete (Christodoulou 2019)."""
    if num_actions is not None:
        return 0.98 * math.log(num_actions)
    return -float(action_dim)


# Discrete actions: pi(.|s) and Q(s, .) are [B, A].
def discrete_soft_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminateds: torch.Tensor,
    next_probs: torch.Tensor,
    next_logp: torch.Tensor,
    next_q_min: torch.Tensor,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    """y = r + gamma^n (1 - done) sum_a' pi(a'|s') (min Q'(s', a') - alpha log pi(a'|s'))."""
    v_next = (next_probs * (next_q_min - alpha * next_logp)).sum(-1)
    return rewards + discounts * (1.0 - terminateds.float()) * v_next


def discrete_actor_loss(
    probs: torch.Tensor, logp: torch.Tensor, q_min: torch.Tensor, alpha: torch.Tensor | float
) -> torch.Tensor:
    """J_pi = E_s[sum_a pi(a|s) (alpha log pi(a|s) - min Q(s, a))]."""
    return (probs * (alpha * logp - q_min.detach())).sum(-1).mean()


def discrete_alpha_loss(
    log_alpha: torch.Tensor, probs: torch.Tensor, logp: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """J_alpha = -E_s[log alpha (sum_a pi log pi + H_target)]."""
    neg_entropy = (probs * logp).sum(-1).detach()
    return -(log_alpha * (neg_entropy + target_entropy)).mean()
