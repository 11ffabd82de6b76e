"""The gradient of the PPO loss, backpropagated by hand through the default MLP module.

Why: on a CPU, autograd costs a few microseconds per recorded op, and one PPO minibatch
of the default actor-critic (two small MLPs) records about 400 of them -- about three
times the arithmetic. The chain rule written out below takes about 150 plain tensor ops
for the same gradient, so an update runs 2-3x faster. Custom modules, and any module this
file does not know (`supported()`), train through autograd and `ppo_loss` as before;
tests check both paths give the same gradients.

The loss is the one of `ppo_learner.ppo_loss` (B = minibatch size, r = pi / pi_old):

    L = -1/B sum min(r A, clip(r) A) + c_vf/B sum (V - V_target)^2 - c_ent/B sum H[pi]
        (+ beta/B sum KL[pi_old || pi])

    dL/d log pi = -r A / B  where the unclipped term is the minimum, else 0
    dL/dV       = 2 c_vf (V - V_target) / B  (0 where `vf_clip_param` clips the error)

and the distribution supplies d log pi / d inputs, dH / d inputs and dKL / d inputs.
"""

from __future__ import annotations

from typing import Any

import torch

from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.core.distributions import Distribution
from scalerl.core.rl_module import Columns, RLModule


def supported(module: RLModule, dist_cls: type[Distribution]) -> bool:
    """True for the default PPO module (not a subclass: it may change the forward pass)
    with a distribution whose gradients are written out (`Distribution.has_hand_gradients`:
    every default distribution but the squashed Gaussian), once an optimizer gave every
    parameter a `.grad` buffer to write into."""
    return (
        type(module) is DefaultPPOTorchRLModule
        and not module.pre.has_params  # a CNN encoder trains through autograd
        and issubclass(dist_cls, Distribution)
        and dist_cls.has_hand_gradients()
        and all(p.grad is not None for p in module.parameters())
    )


@torch.no_grad()
def ppo_gradients(
    module: DefaultPPOTorchRLModule,
    dist_cls: type[Distribution],
    batch: dict[str, torch.Tensor],
    *,
    clip_param: float,
    vf_clip_param: float | None,
    vf_loss_coeff: float,
    entropy_coeff: float,
    kl_coeff: float,
    use_kl_loss: bool,
) -> dict[str, Any]:
    """Write dL/d theta into every parameter's `.grad`; return the loss terms as
    `ppo_loss` reports them (entropy and KL only where they are part of the loss)."""
    # Forward pass, keeping each layer's activations.
    obs = batch[Columns.OBS]
    x = module.pre(module.encoder_obs(obs))
    pi_features, pi_enc_cache = module.pi_encoder.forward_cached(x)
    if module.vf_encoder is None:
        vf_features, vf_enc_cache = pi_features, None
    else:
        vf_features, vf_enc_cache = module.vf_encoder.forward_cached(x)
    head_out, pi_head_cache = module.pi_head.forward_cached(pi_features)
    values, vf_head_cache = module.vf_head.forward_cached(vf_features)
    values = values.squeeze(-1)
    if module.free_log_std:
        head_out = torch.cat([head_out, module.log_std.expand_as(head_out)], dim=-1)
    head_out, log_std_clipped = module.clip_log_std(head_out)  # log_std_clip_param
    pi = dist_cls(module.mask_dist_inputs(head_out, obs))
    A = batch[Columns.ADVANTAGES]
    n = A.shape[0]

    # Clipped surrogate and its gradient with respect to the distribution inputs.
    logp, dlogp = pi.logp_grad(batch[Columns.ACTIONS])
    ratio = torch.exp(logp - batch[Columns.ACTION_LOGP])
    unclipped = ratio * A
    clipped = ratio.clamp(1 - clip_param, 1 + clip_param) * A
    policy_loss = -torch.min(unclipped, clipped).mean()
    dL_dlogp = torch.where(unclipped <= clipped, unclipped, 0.0).mul_(-1.0 / n)
    grad_inputs = dlogp.mul_(dL_dlogp.unsqueeze(-1))

    # Value loss: squared error, clipped at `vf_clip_param` (RLlib's rule).
    err = values - batch[Columns.VALUE_TARGETS]
    sq_err = err * err
    scale = 2.0 * vf_loss_coeff / n
    if vf_clip_param is not None:
        vf_loss = sq_err.clamp(max=vf_clip_param).mean()
        grad_values = torch.where(sq_err <= vf_clip_param, err, 0.0).mul_(scale)
    else:
        vf_loss = sq_err.mean()
        grad_values = err.mul_(scale)

    # Entropy and KL only when they are loss terms: the learner reports both once per
    # update, so computing them per minibatch would be wasted work.
    stats = {"policy_loss": policy_loss, "vf_loss": vf_loss}
    total = policy_loss + vf_loss_coeff * vf_loss
    if entropy_coeff != 0:
        stats["entropy"] = pi.entropy().mean()
        total = total - entropy_coeff * stats["entropy"]
        grad_inputs.sub_(pi.entropy_grad(), alpha=entropy_coeff / n)
    if use_kl_loss:
        pi_old = dist_cls(batch[Columns.ACTION_DIST_INPUTS])
        stats["mean_kl_loss"] = pi_old.kl(pi).mean()
        total = total + kl_coeff * stats["mean_kl_loss"]
        grad_inputs.add_(pi.kl_grad(pi_old), alpha=kl_coeff / n)

    # Backward pass through the mask, the heads, the log-std parameter and the encoders.
    grad_inputs = module.mask_dist_inputs(grad_inputs, obs, fill=0.0)
    if log_std_clipped is not None:
        grad_inputs = grad_inputs.masked_fill(log_std_clipped, 0.0)
    if module.free_log_std:
        grad_inputs, grad_log_std = grad_inputs.chunk(2, dim=-1)
        torch.sum(grad_log_std, 0, out=module.log_std.grad)
    grad_pi_features = module.pi_head.backward(pi_head_cache, grad_inputs)
    grad_vf_features = module.vf_head.backward(vf_head_cache, grad_values.unsqueeze(-1))
    if vf_enc_cache is None:
        module.pi_encoder.backward(pi_enc_cache, grad_pi_features + grad_vf_features, False)
    else:
        module.pi_encoder.backward(pi_enc_cache, grad_pi_features, False)
        module.vf_encoder.backward(vf_enc_cache, grad_vf_features, False)
    return {"total_loss": total, **stats}
