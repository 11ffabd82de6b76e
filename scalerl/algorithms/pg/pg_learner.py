"""The policy-gradient loss (Williams 1992, REINFORCE with a learned baseline V(s)).

    A_t = G_t - V(s_t)            G_t: the discounted return (GAE with lambda = 1)
    L   = -1/B sum_t log pi(a_t|s_t) A_t + c_vf/B sum_t (V(s_t) - G_t)^2

A_t is standardized over the train batch and carries no gradient (it is data).
"""

from __future__ import annotations

from typing import Any

import torch

from scalerl.algorithms.on_policy_learner import OnPolicyLearner
from scalerl.core.distributions import Distribution
from scalerl.core.rl_module import Columns


def pg_loss(
    dist_cls: type[Distribution],
    batch: dict[str, torch.Tensor],
    fwd_out: dict[str, torch.Tensor],
    *,
    vf_loss_coeff: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = -mean(log pi(a|s) A) + c_vf mean((V - G)^2); returns (L, its terms)."""
    pi = dist_cls(fwd_out[Columns.ACTION_DIST_INPUTS])
    policy_loss = -(pi.logp(batch[Columns.ACTIONS]) * batch[Columns.ADVANTAGES]).mean()
    vf_loss = (fwd_out[Columns.VF_PREDS] - batch[Columns.VALUE_TARGETS]).pow(2).mean()
    total = policy_loss + vf_loss_coeff * vf_loss
    return total, {"total_loss": total, "policy_loss": policy_loss, "vf_loss": vf_loss}


class PGLearner(OnPolicyLearner):
    """The PG learner: returns and advantages by `OnPolicyLearner` (GAE, `lambda_`),
    then `pg_loss` on minibatches (by default one step on the whole batch)."""

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """`pg_loss` on the (mini)batch's valid steps."""
        steps, fwd_out = self.valid_steps(batch, fwd_out)
        dist_cls = self.module.get_train_action_dist_cls()
        loss, stats = pg_loss(dist_cls, steps, fwd_out, vf_loss_coeff=config.vf_loss_coeff)
        self.log_metrics(**stats)
        return loss
