"""The gradients of SAC's three losses written out, for the default module (no CNN).

On a CPU autograd costs a few microseconds per recorded op, and one SAC update records
several hundred (three policy and three critic passes, the squashed-Gaussian algebra, the
losses): with small networks that is most of the update. Here each pass is run once with
its intermediate values kept (`MLP.forward_cached`, `EnsembleMLP.forward_cached`) and the
chain rule is applied by hand, writing the gradients straight into the `.grad` buffers of
the three optimizers. Same values as `sac_loss.sac_losses` + `backward()` (tested).

Continuous actions, per sample (B in the batch), u = mu + sigma eps, a~ = tanh(u):
    dJ_Q / dQ_k       = (Q_k - y) w / B
    dJ_pi / da~       = -(1/B) dQ_k*(s, a~) / da~        (k* the smaller critic)
    dJ_pi / du        = dJ_pi / da~ (1 - a~^2) + (alpha / B) 2 a~
                        (log pi = log N(eps) - sum log sigma - sum log(1 - tanh(u)^2))
    dJ_pi / dmu       = dJ_pi / du
    dJ_pi / dlog sig  = dJ_pi / du sigma eps - alpha / B  (zero where the clip is active)
    dJ_alpha / dlog a = -mean(log pi + H_target)
Discrete actions, f = alpha log pi - min_k Q_k(s, .), logits z:
    dJ_pi / dz        = pi (f - sum_a pi f) / B
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from scalerl.algorithms.sac.default_sac_rl_module import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    DefaultSACTorchRLModule,
)
from scalerl.algorithms.sac.sac_loss import (
    _stats,
    discrete_soft_target,
    soft_target,
)
from scalerl.core.columns import Columns

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
LOG_2 = math.log(2.0)


def supports_manual_gradients(module: Any) -> bool:
    """The exact default module (not a subclass), with no parameters before the MLPs."""
    return (
        type(module) is DefaultSACTorchRLModule
        and not module.pi_pre.has_params
        and not module.qf.pre.has_params
    )


@torch.no_grad()
def sac_gradients(
    module: DefaultSACTorchRLModule,
    target_qf: Any,
    batch: dict[str, Any],
    log_alpha: torch.Tensor,
    target_entropy: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Write d(J_Q + J_pi + J_alpha) into the `.grad` of the critics, the policy and
    log alpha (overwriting them); return the TD errors and the statistics of `sac_losses`."""
    if module.discrete:
        return _discrete_gradients(module, target_qf, batch, log_alpha, target_entropy)
    obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
    r, discount, done = batch[Columns.REWARDS], batch[Columns.DISCOUNTS], batch[Columns.TERMINATEDS]
    weights = batch.get(Columns.WEIGHTS)
    B, d = len(r), module.action_dim
    alpha = log_alpha.exp()

    # y = r + gamma^n (1 - done) (min_k Q'_k(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s').
    a_next, logp_next = module.dist_cls(module.pi_inputs(next_obs)).rsample_and_logp()
    q_next = target_qf(target_qf.features(next_obs), a_next).amin(0)
    y = soft_target(r, discount, done, q_next, logp_next, alpha)

    # Critics: J_Q = mean_i w_i sum_k 1/2 (Q_k(s_i, a_i) - y_i)^2.
    features = module.qf.features(obs)
    critic = module.qf.net
    q_in = torch.cat([features, batch[Columns.ACTIONS].reshape(B, -1)], dim=-1)
    q, q_cache = critic.forward_cached(q_in)
    q = q.squeeze(-1)  # [K, B]
    diff = q - y
    per_sample = 0.5 * diff.pow(2).sum(0)
    grad_q = diff / B
    if weights is not None:
        per_sample, grad_q = per_sample * weights, grad_q * weights
    J_Q = per_sample.mean()
    critic.backward(q_cache, grad_q[..., None])

    # Policy: a~ = tanh(mu + sigma eps), reparameterized.
    out, pi_cache = module.pi.forward_cached(module.pi_pre(obs))
    mean, log_std_raw = out.chunk(2, dim=-1)
    log_std = log_std_raw.clamp(LOG_STD_MIN, LOG_STD_MAX)
    std = log_std.exp()
    eps = torch.randn(mean.shape, device=mean.device)
    u = mean + std * eps
    a_pi = torch.tanh(u)
    log_det = 2.0 * (LOG_2 - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2)
    logp_pi = (-0.5 * eps.pow(2) - log_std - LOG_SQRT_2PI - log_det).sum(-1)
    q_pi, qpi_cache = critic.forward_cached(torch.cat([features, a_pi], dim=-1))
    q_pi = q_pi.squeeze(-1)
    q_min = q_pi.amin(0)
    J_pi = (alpha * logp_pi - q_min).mean()
    # Only the smaller critic carries the gradient (as autograd's min for distinct values).
    smaller = torch.zeros_like(q_pi).scatter_(0, q_pi.argmin(0, keepdim=True), -1.0 / B)
    grad_in = critic.backward(qpi_cache, smaller[..., None], weight_grads=False, input_grad=True)
    grad_a = grad_in[..., -d:].sum(0)
    grad_u = grad_a * (1.0 - a_pi * a_pi) + (2.0 * alpha / B) * a_pi
    in_clip = (log_std_raw >= LOG_STD_MIN) & (log_std_raw <= LOG_STD_MAX)
    grad_log_std = (grad_u * std * eps - alpha / B) * in_clip
    module.pi.backward(pi_cache, torch.cat([grad_u, grad_log_std], dim=-1), input_grad=False)

    # Temperature: J_alpha = -mean(log alpha (log pi + H_target)).
    J_alpha = -(log_alpha * (logp_pi + target_entropy)).mean()
    log_alpha.grad.copy_(-(logp_pi + target_entropy).mean())
    td_errors = diff[0].abs()
    return td_errors, _stats(J_Q, J_pi, J_alpha, alpha, q[0], td_errors, logp_pi)


def _discrete_gradients(module, target_qf, batch, log_alpha, target_entropy):
    obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
    r, discount, done = batch[Columns.REWARDS], batch[Columns.DISCOUNTS], batch[Columns.TERMINATEDS]
    weights = batch.get(Columns.WEIGHTS)
    B = len(r)
    alpha = log_alpha.exp()

    logp_next = torch.log_softmax(module.pi_inputs(next_obs), dim=-1)
    q_next = target_qf(target_qf.features(next_obs)).amin(0)
    y = discrete_soft_target(r, discount, done, logp_next.exp(), logp_next, q_next, alpha)

    critic = module.qf.net
    q_all, q_cache = critic.forward_cached(module.qf.features(obs))  # [K, B, A]
    index = (batch[Columns.ACTIONS].long() - module.action_start).expand(len(q_all), -1)[..., None]
    q = q_all.gather(-1, index).squeeze(-1)  # [K, B]
    diff = q - y
    per_sample = 0.5 * diff.pow(2).sum(0)
    grad_q = diff / B
    if weights is not None:
        per_sample, grad_q = per_sample * weights, grad_q * weights
    J_Q = per_sample.mean()
    critic.backward(q_cache, torch.zeros_like(q_all).scatter_(-1, index, grad_q[..., None]))

    logits, pi_cache = module.pi.forward_cached(module.pi_pre(obs))
    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp()
    f = alpha * logp - q_all.amin(0)
    per_state = (probs * f).sum(-1)
    J_pi = per_state.mean()
    module.pi.backward(pi_cache, probs * (f - per_state[:, None]) / B, input_grad=False)

    neg_entropy = (probs * logp).sum(-1)
    J_alpha = -(log_alpha * (neg_entropy + target_entropy)).mean()
    log_alpha.grad.copy_(-(neg_entropy + target_entropy).mean())
    td_errors = diff[0].abs()
    return td_errors, _stats(J_Q, J_pi, J_alpha, alpha, q[0], td_errors, neg_entropy)
