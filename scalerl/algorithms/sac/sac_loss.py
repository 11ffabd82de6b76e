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
from typing import Any

import torch

from scalerl.core.columns import Columns


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
    q1: torch.Tensor,
    q2: torch.Tensor | None,
    y: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(J_Q, per-sample |TD error| of Q1 for prioritized replay). `y` carries no gradient.
    Without a twin (`q2` None) J_Q = 1/2 E[(Q1(s, a) - y)^2]."""
    y = y.detach()
    per_sample = 0.5 * (q1 - y).pow(2)
    if q2 is not None:
        per_sample = per_sample + 0.5 * (q2 - y).pow(2)
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


# The losses of one update, composed from the terms above.


def sac_losses(
    module: Any,
    target_qf: Any,
    batch: dict[str, Any],
    log_alpha: torch.Tensor,
    target_entropy: float,
    pi_inputs: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
    """({"critic": J_Q, "actor": J_pi, "alpha": J_alpha}, per-sample TD errors, stats) on
    one replayed batch; `pi_inputs`: the policy's distribution inputs at obs, if the caller
    has them (`forward_train`).

    The three terms touch disjoint parameters, so one backward pass of their sum gives each
    optimizer its gradient: J_pi evaluates the critics with their weights detached (its
    gradient reaches the policy through a~ only), J_alpha sees log pi detached, and the
    critic features are computed once and detached for J_pi.
    """
    if pi_inputs is None:
        pi_inputs = module.pi_inputs(batch[Columns.OBS])
    if module.discrete:
        return _discrete_sac_losses(module, target_qf, batch, log_alpha, target_entropy, pi_inputs)
    obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
    r, discount, done = batch[Columns.REWARDS], batch[Columns.DISCOUNTS], batch[Columns.TERMINATEDS]
    alpha = log_alpha.detach().exp()
    with torch.no_grad():
        a_next, logp_next = module.dist_cls(module.pi_inputs(next_obs)).rsample_and_logp()
        q_next = target_qf(target_qf.features(next_obs), a_next).amin(0)
        y = soft_target(r, discount, done, q_next, logp_next, alpha)
    features = module.qf.features(obs)
    q = module.qf(features, batch[Columns.ACTIONS])  # [K, B]
    J_Q, td_errors = critic_loss(q[0], q[1] if len(q) > 1 else None, y, batch.get(Columns.WEIGHTS))
    a_pi, logp_pi = module.dist_cls(pi_inputs).rsample_and_logp()
    q_pi = module.qf(features.detach(), a_pi, detach_params=True).amin(0)
    J_pi = actor_loss(q_pi, logp_pi, alpha)
    J_alpha = alpha_loss(log_alpha, logp_pi, target_entropy)
    return (
        {"critic": J_Q, "actor": J_pi, "alpha": J_alpha},
        td_errors,
        _stats(J_Q, J_pi, J_alpha, alpha, q[0], td_errors, logp_pi),
    )


def _discrete_sac_losses(module, target_qf, batch, log_alpha, target_entropy, pi_inputs):
    """The same with sums over actions in place of sampled actions (Christodoulou 2019)."""
    obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
    r, discount, done = batch[Columns.REWARDS], batch[Columns.DISCOUNTS], batch[Columns.TERMINATEDS]
    alpha = log_alpha.detach().exp()
    with torch.no_grad():
        logp_next = torch.log_softmax(module.pi_inputs(next_obs), dim=-1)
        q_next = target_qf(target_qf.features(next_obs)).amin(0)  # [B, A]
        y = discrete_soft_target(r, discount, done, logp_next.exp(), logp_next, q_next, alpha)
    q_all = module.qf(module.qf.features(obs))  # [K, B, A]
    actions = batch[Columns.ACTIONS].long() - module.action_start
    q = q_all.gather(-1, actions.expand(len(q_all), -1)[..., None]).squeeze(-1)  # [K, B]
    J_Q, td_errors = critic_loss(q[0], q[1] if len(q) > 1 else None, y, batch.get(Columns.WEIGHTS))
    logp = torch.log_softmax(pi_inputs, dim=-1)
    probs = logp.exp()
    J_pi = discrete_actor_loss(probs, logp, q_all.detach().amin(0), alpha)
    J_alpha = discrete_alpha_loss(log_alpha, probs, logp, target_entropy)
    logp_pi = (probs * logp).sum(-1).detach()  # E_pi[log pi] = -entropy
    return (
        {"critic": J_Q, "actor": J_pi, "alpha": J_alpha},
        td_errors,
        _stats(J_Q, J_pi, J_alpha, alpha, q[0], td_errors, logp_pi),
    )


def _stats(J_Q, J_pi, J_alpha, alpha, q1, td_errors, logp_pi) -> dict[str, torch.Tensor]:
    q1 = q1.detach()
    return {
        "qf_loss": J_Q.detach(),
        "policy_loss": J_pi.detach(),
        "alpha_loss": J_alpha.detach(),
        "alpha_value": alpha,
        "qf_mean": q1.mean(),
        "qf_max": q1.max(),
        "qf_min": q1.min(),
        "td_error_mean": td_errors.mean(),
        "logps": logp_pi.detach().mean(),
    }
