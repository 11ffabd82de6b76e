"""The DQN loss on a batch of (n-step) transitions, Rainbow parts included.

Batch columns: obs, actions, rewards (R^(n)), next_obs, terminateds, discounts (gamma^n'
of the steps taken) and, from prioritized replay, weights (importance weights; 1 without).

    scalar Q : L = mean_i w_i huber(Q(s_i, a_i) - y_i),  y from `targets.q_targets`
    C51      : L = mean_i w_i CE(m_i, p(s_i, a_i)),     m from `targets.c51_target_probs`

Returns the loss, the per-sample TD errors (|y - Q| or the cross-entropy: the new
priorities of prioritized replay) and the statistics to report.
"""

from __future__ import annotations

from typing import Any

import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_LOGITS, QF_PREDS, QF_PROBS
from scalerl.algorithms.dqn.targets import c51_target_probs, q_targets
from scalerl.core.columns import Columns


def dqn_loss(
    module: Any,
    target_module: Any,
    batch: dict[str, Any],
    *,
    double_q: bool = True,
    huber_delta: float = 1.0,
    out: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, td_errors [B], stats) for `module` against the frozen `target_module`; `out`:
    the module's Q-values of `batch`'s obs, if the caller has them (`forward_train`)."""
    if out is None:
        out = module.compute_q_values({Columns.OBS: batch[Columns.OBS]})
    actions = batch[Columns.ACTIONS].long() - module.action_start
    weights = batch.get(Columns.WEIGHTS)
    with torch.no_grad():
        next_inputs = {Columns.OBS: batch[Columns.NEXT_OBS]}
        next_target = target_module.compute_q_values(next_inputs)
        next_online = module.compute_q_values(next_inputs)[QF_PREDS] if double_q else None
    rewards, discounts = batch[Columns.REWARDS].float(), batch[Columns.DISCOUNTS].float()
    terminateds = batch[Columns.TERMINATEDS]
    q_taken = out[QF_PREDS].gather(-1, actions[:, None]).squeeze(-1)

    if QF_PROBS in out:  # C51: cross-entropy to the projected target distribution
        with torch.no_grad():
            chooser = next_target[QF_PREDS] if next_online is None else next_online
            a_star = chooser.argmax(-1)
            next_probs = next_target[QF_PROBS][torch.arange(len(a_star)), a_star]
            atoms = module.atoms
            target = c51_target_probs(
                next_probs, rewards, discounts, terminateds, float(atoms[0]), float(atoms[-1])
            )
        logits = out[QF_LOGITS][torch.arange(len(actions)), actions]
        per_sample = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
        td_errors = per_sample.detach()
    else:
        with torch.no_grad():
            y = q_targets(next_target[QF_PREDS], rewards, discounts, terminateds, next_online)
        diff = q_taken - y
        per_sample = torch.nn.functional.huber_loss(q_taken, y, reduction="none", delta=huber_delta)
        td_errors = diff.detach().abs()
    loss = (per_sample * weights).mean() if weights is not None else per_sample.mean()
    return (
        loss,
        td_errors,
        {
            "qf_loss": loss.detach(),
            "qf_mean": q_taken.detach().mean(),
            "td_error_mean": td_errors.mean(),
        },
    )
