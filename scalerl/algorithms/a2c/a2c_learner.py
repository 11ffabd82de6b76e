"""The A2C update (Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement
Learning", Algorithm S3, synchronous): one gradient step per rollout of

    A_t = R_t - V(s_t)   R_t = sum_{i<k} gamma^i r_{t+i} + gamma^k V(s_{t+k})  (n-step return;
                         GAE(lambda) with `use_gae` and lambda_ < 1)
    L   = -1/B sum_t log pi(a_t|s_t) A_t              the policy gradient (A_t is data)
          + c_vf 1/B sum_t (R_t - V(s_t))^2           the critic's regression to R_t
          - c_ent 1/B sum_t H[pi(.|s_t)]              the entropy bonus

Means over the batch (RLlib's old stack summed), so `lr` does not scale with the batch;
advantages are not standardized, as in the paper.
"""

from __future__ import annotations

from typing import Any

import torch

from scalerl.algorithms.on_policy_learner import OnPolicyLearner
from scalerl.core.distributions import Distribution
from scalerl.core.learner import DEFAULT_OPTIMIZER
from scalerl.core.rl_module import Columns, RLModuleSpec
from scalerl.utils.nested import index
from scalerl.utils.schedules import Scheduler


def a2c_loss(
    dist_cls: type[Distribution],
    batch: dict[str, torch.Tensor],
    fwd_out: dict[str, torch.Tensor],
    *,
    vf_loss_coeff: float,
    entropy_coeff: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = -mean(log pi(a|s) A) + c_vf mean((R - V)^2) - c_ent mean(H[pi]); returns
    (L, its terms)."""
    pi = dist_cls(fwd_out[Columns.ACTION_DIST_INPUTS])
    A, R, V = batch[Columns.ADVANTAGES], batch[Columns.VALUE_TARGETS], fwd_out[Columns.VF_PREDS]
    policy_loss = -(pi.logp(batch[Columns.ACTIONS]) * A).mean()
    vf_loss = (R - V).pow(2).mean()
    entropy = pi.entropy().mean()
    total = policy_loss + vf_loss_coeff * vf_loss - entropy_coeff * entropy
    return total, {
        "total_loss": total,
        "policy_loss": policy_loss,
        "vf_loss": vf_loss,
        "entropy": entropy,
    }


class A2CLearner(OnPolicyLearner):
    """The A2C learner: n-step (or GAE) advantages by `OnPolicyLearner`, then one optimizer
    step of `a2c_loss` on the whole batch, its gradient optionally accumulated over
    microbatches (`microbatch_size`)."""

    one_step_per_batch = True

    def __init__(self, config: Any, module_spec: RLModuleSpec):
        super().__init__(config, module_spec)
        self.entropy_schedule = Scheduler(config.entropy_coeff)
        self.entropy_coeff = self.entropy_schedule.value(0)

    def gae_lambda(self) -> float:
        """`lambda_` with `use_gae`, else 1 (the n-step return to the fragment's end)."""
        return self.config.lambda_ if self.config.use_gae else 1.0

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Advantages and value targets over the [T, N] rollout, as tensors (advantages
        not standardized, as the paper)."""
        return {k: self.to_tensors(v) for k, v in self.compute_advantages(batch).items()}

    def before_update(self, timestep: int) -> dict[str, Any]:
        """The learning rate and the entropy coefficient from their schedules."""
        self.entropy_coeff = self.entropy_schedule.value(timestep)
        return {**super().before_update(timestep), "curr_entropy_coeff": self.entropy_coeff}

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """`a2c_loss` on the batch's valid steps."""
        steps, fwd_out = self.valid_steps(batch, fwd_out)
        dist_cls = self.module.get_train_action_dist_cls()
        loss, stats = a2c_loss(
            dist_cls,
            steps,
            fwd_out,
            vf_loss_coeff=config.vf_loss_coeff,
            entropy_coeff=self.entropy_coeff,
        )
        self.log_metrics(**stats)
        return loss

    def train_step(self, batch: dict[str, Any], fast: Any = None) -> dict:
        """One optimizer step on `batch`; with `microbatch_size`, its gradient is the sum of
        the microbatches' gradients, each loss weighted by its share of the valid steps
        (so the step equals the whole batch's)."""
        rows = len(batch[Columns.ADVANTAGES])
        size = self.config.microbatch_size
        if size is None or size >= self._steps(batch):
            return super().train_step(batch, fast)
        if Columns.LOSS_MASK in batch:  # rows are sequences: that many steps' worth
            size = max(1, round(size / self.module.max_seq_len))
        total_steps = self._steps(batch)
        self.optimizer.zero_grad()
        metrics: dict[str, torch.Tensor] = {}
        for start in range(0, rows, size):
            mb = {k: index(v, slice(start, start + size)) for k, v in batch.items()}
            weight = self._steps(mb) / total_steps
            self._step_metrics = {}
            losses = self.compute_losses(batch=mb, fwd_out=self.forward_train(mb))
            (losses[DEFAULT_OPTIMIZER] * weight).backward()
            for key, value in self._step_metrics.items():
                metrics[key] = metrics.get(key, 0.0) + value.detach() * weight
        norm = self.apply_gradients(self.optimizer, metrics, DEFAULT_OPTIMIZER)
        metrics[f"gradients_{DEFAULT_OPTIMIZER}_global_norm"] = norm
        return metrics

    @staticmethod
    def _steps(batch: dict[str, Any]) -> int:
        """The valid (unpadded) steps of a flat or sequence batch."""
        mask = batch.get(Columns.LOSS_MASK)
        return len(batch[Columns.ADVANTAGES]) if mask is None else int(mask.sum())
