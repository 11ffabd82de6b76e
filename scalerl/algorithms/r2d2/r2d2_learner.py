"""The R2D2 learner: one gradient step per replayed batch of sequences; the target network,
its updates and the epsilon that travels with the weights are DQN's."""

from __future__ import annotations

from typing import Any

import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from scalerl.algorithms.dqn.dqn_learner import DQNLearner
from scalerl.algorithms.r2d2.r2d2_loss import r2d2_loss, sequence_inputs, unroll_q
from scalerl.core.columns import Columns


class R2D2Learner(DQNLearner):
    """The R2D2 learner: DQN's learner with the sequence loss (burn-in, value rescaling h)."""

    def forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Q over each sequence, unrolled from its stored state (`zero_init_states`: a zero
        state) with the burn-in steps cut off from the gradient (`r2d2_loss.unroll_q`)."""
        return {QF_PREDS: unroll_q(self.module, *self._unroll_inputs(batch))}

    def _unroll_inputs(self, batch: dict[str, Any]) -> tuple[dict, dict, torch.Tensor]:
        inputs = sequence_inputs(batch)
        state = batch[Columns.STATE_IN]
        if self.config.zero_init_states:
            B = len(batch[Columns.SEQ_MASK])
            device = batch[Columns.SEQ_MASK].device
            initial = self.module.get_initial_state().items()
            state = {k: v.expand(B, *v.shape).to(device) for k, v in initial}
        return inputs, state, batch[Columns.BURN_IN].long()

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """`r2d2_loss` on the unrolled Q; logs |TD error| [B, L] and the trained-step mask."""
        loss, td_errors, trained, stats = r2d2_loss(
            self.module,
            self.target_module,
            batch,
            n_step=config.n_step,
            gamma=config.gamma,
            double_q=config.double_q,
            h_epsilon=config.h_function_epsilon if config.use_h_function else None,
            zero_init_states=config.zero_init_states,
            q=fwd_out[QF_PREDS],
        )
        self._num_trained_steps = stats.pop("num_trained_steps")
        self.log_metrics(**stats)
        self.log_per_sample(td_error=td_errors, td_mask=trained)
        return loss

    def after_update(self, batch: dict[str, Any], timestep: int) -> dict[str, Any]:
        """Update the target network when due; count the trained (unmasked) steps."""
        self.maybe_update_target(timestep)
        return {"num_module_steps_trained": int(self._num_trained_steps)}
