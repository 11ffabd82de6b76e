"""The R2D2 learner: one gradient step per replayed batch of sequences; the target network,
its updates and the epsilon that travels with the weights are DQN's."""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.algorithms.dqn.dqn_learner import DQNLearner
from scalerl.algorithms.r2d2.r2d2_loss import r2d2_loss
from scalerl.core.columns import Columns


class R2D2Learner(DQNLearner):
    """The R2D2 learner: DQN's learner with the sequence loss (burn-in, value rescaling h)."""

    def update(self, batch: dict[str, Any], timestep: int) -> dict[str, Any]:
        """One step on replayed sequences; returns metrics, and the |TD errors| [B, L] with
        the mask of the trained steps (`td_error`, `td_mask`) for the sequence priorities."""
        cfg = self.config
        lr = self.set_lr(timestep)
        tensors = {k: self.to_tensors(v) for k, v in batch.items() if k != Columns.INDICES}
        loss, td_errors, trained, stats = r2d2_loss(
            self.module,
            self.target_module,
            tensors,
            n_step=cfg.n_step,
            gamma=cfg.gamma,
            double_q=cfg.double_q,
            h_epsilon=cfg.h_function_epsilon if cfg.use_h_function else None,
            zero_init_states=cfg.zero_init_states,
        )
        norm = self.apply_loss(loss, stats)
        self.maybe_update_target(timestep)
        metrics = {k: float(v) for k, v in stats.items()}
        metrics.update(
            curr_lr=lr,
            gradients_default_optimizer_global_norm=float(norm),
            num_non_finite_updates_skipped=self.num_non_finite_updates_skipped,
            num_module_steps_trained=int(stats["num_trained_steps"]),
        )
        metrics.pop("num_trained_steps")
        return {
            **metrics,
            "td_error": td_errors.cpu().numpy(),
            "td_mask": trained.cpu().numpy().astype(np.bool_),
        }
