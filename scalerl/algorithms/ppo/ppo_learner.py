"""The PPO update (Schulman et al. 2017): GAE, clipped surrogate, value loss, entropy, KL."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scalerl.algorithms.ppo import manual_gradients
from scalerl.core.distributions import Distribution
from scalerl.core.learner import Learner
from scalerl.core.rl_module import Columns, RLModuleSpec
from scalerl.utils.advantages import compute_gae, next_values_for
from scalerl.utils.nested import index, map_structure
from scalerl.utils.schedules import Scheduler
from scalerl.utils.sequences import SequenceLayout, recurrent_values, sequence_batch

TRAIN_COLUMNS = (
    Columns.OBS,
    Columns.ACTIONS,
    Columns.ACTION_LOGP,
    Columns.ACTION_DIST_INPUTS,
    Columns.ADVANTAGES,
    Columns.VALUE_TARGETS,
)
# Per-step columns of a train batch (those that sequences pad and the loss mask selects).
TRAIN_STEP_COLUMNS = (*TRAIN_COLUMNS, Columns.ACTION_LOGP, Columns.VF_PREDS)


def ppo_loss(
    dist_cls: type[Distribution],
    batch: dict[str, torch.Tensor],
    fwd_out: dict[str, torch.Tensor],
    *,
    clip_param: float,
    vf_clip_param: float | None,
    vf_loss_coeff: float,
    entropy_coeff: float,
    kl_coeff: float,
    use_kl_loss: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = -L^CLIP + c_vf * L^VF - c_ent * H[pi] (+ beta * KL[pi_old || pi])."""
    pi = dist_cls(fwd_out[Columns.ACTION_DIST_INPUTS])
    pi_old = dist_cls(batch[Columns.ACTION_DIST_INPUTS])
    A = batch[Columns.ADVANTAGES]

    # Clipped surrogate: r_t = pi(a|s) / pi_old(a|s).
    ratio = torch.exp(pi.logp(batch[Columns.ACTIONS]) - batch[Columns.ACTION_LOGP])
    surrogate = torch.min(ratio * A, ratio.clamp(1 - clip_param, 1 + clip_param) * A)
    policy_loss = -surrogate.mean()

    # Value loss, with RLlib's clip of the squared error at `vf_clip_param`.
    vf_loss = (fwd_out[Columns.VF_PREDS] - batch[Columns.VALUE_TARGETS]).pow(2)
    if vf_clip_param is not None:
        vf_loss = vf_loss.clamp(max=vf_clip_param)
    vf_loss = vf_loss.mean()

    # Entropy and KL need gradients only when they are part of the loss.
    with torch.set_grad_enabled(torch.is_grad_enabled() and entropy_coeff != 0):
        entropy = pi.entropy().mean()
    with torch.set_grad_enabled(torch.is_grad_enabled() and use_kl_loss):
        mean_kl = pi_old.kl(pi).mean()
    total = policy_loss + vf_loss_coeff * vf_loss - entropy_coeff * entropy
    if use_kl_loss:
        total = total + kl_coeff * mean_kl
    return total, {
        "total_loss": total,
        "policy_loss": policy_loss,
        "vf_loss": vf_loss,
        "entropy": entropy,
        "mean_kl_loss": mean_kl,
    }


class PPOLearner(Learner):
    """The PPO learner: GAE, then `num_epochs` of minibatch steps on the clipped surrogate loss
    (hand-written gradients for the default module, autograd otherwise).
    """

    # Backpropagate by hand through the default module (see `manual_gradients`); False
    # makes every module train through autograd.
    manual_gradients = True

    def __init__(self, config: Any, module_spec: RLModuleSpec):
        super().__init__(config, module_spec)
        self.kl_coeff = float(config.kl_coeff)
        self.entropy_schedule = Scheduler(config.entropy_coeff)

    def compute_advantages(self, fragment: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add advantages and value targets to a [T, N] fragment; return it as the train
        batch: flattened to [T*N], or cut into padded sequences [S, L] for a stateful module."""
        cfg = self.config
        T, N = fragment[Columns.REWARDS].shape
        if self.module.is_stateful():
            values, bootstrap_values, trunc_values = recurrent_values(self._values, fragment)
        else:
            all_obs = map_structure(
                lambda o, b, t: np.concatenate([o.reshape(T * N, *o.shape[2:]), b, t]),
                fragment[Columns.OBS],
                fragment[Columns.BOOTSTRAP_OBS],
                fragment[Columns.TRUNC_OBS],
            )
            v = self._values({Columns.OBS: all_obs})
            values, bootstrap_values, trunc_values = (
                v[: T * N].reshape(T, N),
                v[T * N : T * N + N],
                v[T * N + N :],
            )
        next_values = next_values_for(
            values, bootstrap_values, fragment[Columns.TRUNC_INDEX], trunc_values
        )
        advantages, targets = compute_gae(
            fragment[Columns.REWARDS],
            values,
            next_values,
            fragment[Columns.TERMINATEDS],
            fragment[Columns.TRUNCATEDS],
            cfg.gamma,
            cfg.lambda_,
        )
        columns = {k: fragment[k] for k in TRAIN_COLUMNS if k in fragment}
        columns[Columns.ADVANTAGES] = advantages
        columns[Columns.VALUE_TARGETS] = targets
        columns[Columns.VF_PREDS] = values
        # log pi_old(a|s), from the distribution inputs the EnvRunner recorded (arrays from
        # Ray's object store are read-only: copy those, torch wants writable memory).
        flat = {
            k: map_structure(
                lambda x: np.require(x.reshape(T * N, *x.shape[2:]), requirements="W"),
                columns[k],
            )
            for k in (Columns.ACTION_DIST_INPUTS, Columns.ACTIONS)
        }
        dist = self.module.get_train_action_dist_cls()(
            torch.from_numpy(flat[Columns.ACTION_DIST_INPUTS])
        )
        logp = dist.logp(map_structure(torch.from_numpy, flat[Columns.ACTIONS])).numpy()
        columns[Columns.ACTION_LOGP] = logp.reshape(T, N)
        if self.module.is_stateful():
            layout = SequenceLayout.from_starts(fragment[Columns.SEQ_INDEX], T)
            return sequence_batch({**fragment, **columns}, layout, list(columns))
        return {
            k: map_structure(lambda x: x.reshape(T * N, *x.shape[2:]), v)
            for k, v in columns.items()
        }

    @torch.no_grad()
    def _values(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.module.compute_values(self.to_tensors(batch)).cpu().numpy()

    def _valid_steps(self, batch: dict[str, Any], fwd_out: dict[str, Any]) -> tuple[dict, dict]:
        """A sequence batch and its forward outputs reduced to the valid (unpadded) steps,
        so the loss is the same per-step mean as for a flat batch."""
        if Columns.LOSS_MASK not in batch:
            return batch, fwd_out
        mask = batch[Columns.LOSS_MASK]
        steps = {k: index(batch[k], mask) for k in TRAIN_STEP_COLUMNS if k in batch}
        out = {
            k: fwd_out[k][mask]
            for k in (Columns.ACTION_DIST_INPUTS, Columns.VF_PREDS)
            if k in fwd_out
        }
        return steps, out

    def _forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        """`forward_train`, with V(s) from the ValueFunctionAPI where the module's training
        forward pass returns none (as RLlib)."""
        fwd_out = self.module.forward_train(batch)
        if Columns.VF_PREDS not in fwd_out:
            fwd_out = {**fwd_out, Columns.VF_PREDS: self.module.compute_values(batch)}
        return fwd_out

    def update(self, fragment: dict[str, np.ndarray], timestep: int) -> dict[str, float]:
        """Compute GAE advantages for a [T, N] fragment and train on it for `num_epochs` epochs.

        Advantages are standardized over the batch; after the epochs the policy's entropy
        and KL to the sampling policy are measured and the KL coefficient adapted.

        Args:
            fragment: The sampled steps, columns shaped [T, N] (time, env).
            timestep: Lifetime env steps sampled, for the lr and entropy schedules.

        Returns:
            Metric name -> float: the losses averaged over minibatches, entropy, KL, the
            current coefficients and the value function's explained variance.
        """
        cfg = self.config
        flat = self.compute_advantages(fragment)
        valid = flat.get(Columns.LOSS_MASK, slice(None))  # sequences: the unpadded steps
        adv = flat[Columns.ADVANTAGES]
        flat[Columns.ADVANTAGES] = (adv - adv[valid].mean()) / (adv[valid].std() + 1e-8)
        batch = {k: self.to_tensors(v) for k, v in flat.items()}
        minibatch_size = cfg.minibatch_size
        if Columns.LOSS_MASK in flat:  # minibatches of about `minibatch_size` steps
            minibatch_size = max(1, round(cfg.minibatch_size / self.module.max_seq_len))

        lr = self.set_lr(timestep)
        entropy_coeff = self.entropy_schedule.value(timestep)
        dist_cls = self.module.get_train_action_dist_cls()
        rows = []
        coeffs = dict(
            clip_param=cfg.clip_param,
            vf_clip_param=cfg.vf_clip_param,
            vf_loss_coeff=cfg.vf_loss_coeff,
            entropy_coeff=entropy_coeff,
            kl_coeff=self.kl_coeff,
            use_kl_loss=cfg.use_kl_loss,
        )
        by_hand = self.manual_gradients and manual_gradients.supported(self.module, dist_cls)
        for mb in self.minibatches(batch, minibatch_size, cfg.num_epochs):
            if by_hand:
                stats = manual_gradients.ppo_gradients(self.module, dist_cls, mb, **coeffs)
                norm = self.apply_gradients(loss_terms=stats)
            else:
                steps, fwd_out = self._valid_steps(mb, self._forward_train(mb))
                loss, stats = ppo_loss(dist_cls, steps, fwd_out, **coeffs)
                norm = self.apply_loss(loss, stats)
            stats["gradients_default_optimizer_global_norm"] = norm
            rows.append({k: v.detach() for k, v in stats.items()})
        metrics = self.mean_metrics(rows)
        metrics["entropy"], metrics["mean_kl_loss"] = self.policy_change(batch, dist_cls)
        if cfg.use_kl_loss:
            self._adapt_kl_coeff(self.all_reduce_mean(metrics["mean_kl_loss"]))
        targets, values = flat[Columns.VALUE_TARGETS][valid], flat[Columns.VF_PREDS][valid]
        metrics.update(
            curr_lr=lr,
            curr_entropy_coeff=entropy_coeff,
            curr_kl_coeff=self.kl_coeff,
            vf_explained_var=float(1 - np.var(targets - values) / (np.var(targets) + 1e-8)),
            num_module_steps_trained=len(targets) * cfg.num_epochs,
            num_non_finite_updates_skipped=self.num_non_finite_updates_skipped,
        )
        return metrics

    @torch.no_grad()
    def policy_change(
        self, batch: dict[str, torch.Tensor], dist_cls: type[Distribution]
    ) -> tuple[float, float]:
        """H[pi] and KL[pi_old || pi] of the updated policy, averaged over the train batch.

        Measured once after the epochs, as the PPO paper's adaptive-KL rule does (the
        minibatch losses carry these terms only when they have a coefficient).
        """
        batch, fwd_out = self._valid_steps(batch, self.module.forward_train(batch))
        pi = dist_cls(fwd_out[Columns.ACTION_DIST_INPUTS])
        pi_old = dist_cls(batch[Columns.ACTION_DIST_INPUTS])
        return float(pi.entropy().mean()), float(pi_old.kl(pi).mean())

    def _adapt_kl_coeff(self, mean_kl: float) -> None:
        """RLlib's rule: raise beta when KL overshoots the target by 2x, lower it below half."""
        if mean_kl > 2.0 * self.config.kl_target:
            self.kl_coeff *= 1.5
        elif mean_kl < 0.5 * self.config.kl_target:
            self.kl_coeff *= 0.5

    def get_extra_state(self) -> dict:
        return {**super().get_extra_state(), "kl_coeff": self.kl_coeff}

    def set_extra_state(self, state: dict) -> None:
        """Restore the RNG and the adaptive KL coefficient."""
        super().set_extra_state(state)
        self.kl_coeff = float(state["kl_coeff"])
