"""The DQN learner: one gradient step per replayed batch, a target network, and the
exploration rate that travels with the weights."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from scalerl.algorithms.dqn.dqn_loss import dqn_loss
from scalerl.core.columns import Columns
from scalerl.core.learner import Learner
from scalerl.core.rl_module import RLModuleSpec
from scalerl.utils.schedules import Scheduler


class DQNLearner(Learner):
    """The DQN learner: the TD loss on replayed batches, a target network and the epsilon
    schedule of the module's epsilon-greedy exploration.
    """

    def __init__(self, config: Any, module_spec: RLModuleSpec):
        super().__init__(config, module_spec)
        self.target_module = copy.deepcopy(self.module).requires_grad_(False)
        self.epsilon_schedule = Scheduler(config.epsilon)
        self.last_target_update = 0

    def update(self, batch: dict[str, np.ndarray], timestep: int) -> dict[str, Any]:
        """One step on a replayed batch; returns metrics and the batch's TD errors."""
        cfg = self.config
        lr = self.set_lr(timestep)
        self.set_epsilon(timestep)  # the module acts as the EnvRunners' copies do
        if cfg.noisy:
            self.module.reset_noise()
        tensors = {k: self.to_tensors(v) for k, v in batch.items() if k != Columns.INDICES}
        loss, td_errors, stats = dqn_loss(
            self.module, self.target_module, tensors, double_q=cfg.double_q
        )
        norm = self.apply_loss(loss, stats)
        self.maybe_update_target(timestep)
        metrics = {k: float(v) for k, v in stats.items()}
        metrics.update(
            curr_lr=lr,
            gradients_default_optimizer_global_norm=float(norm),
            num_non_finite_updates_skipped=self.num_non_finite_updates_skipped,
            num_module_steps_trained=len(td_errors),
        )
        return {**metrics, "td_error": td_errors.cpu().numpy()}

    def maybe_update_target(self, timestep: int) -> None:
        """Update the target network every `target_network_update_freq` env steps."""
        if timestep - self.last_target_update >= self.config.target_network_update_freq:
            self.update_target()
            self.last_target_update = timestep

    @torch.no_grad()
    def update_target(self) -> None:
        """theta' <- tau theta + (1 - tau) theta' (tau = 1: a hard copy)."""
        tau = float(self.config.tau)
        for target, online in zip(self.target_module.parameters(), self.module.parameters()):
            target.lerp_(online, tau)

    def set_epsilon(self, timestep: int) -> float:
        """Set the module's epsilon from the `epsilon` schedule at `timestep`; return it."""
        epsilon = self.epsilon_schedule.value(timestep)
        self.module.epsilon.fill_(epsilon)
        return epsilon

    def get_extra_state(self) -> dict:
        return {**super().get_extra_state(), "last_target_update": self.last_target_update}

    def set_extra_state(self, state: dict) -> None:
        """Restore the RNG and the last target-update step; the target network restarts as a copy
        of the (restored) online weights, since checkpoints do not store it.
        """
        super().set_extra_state(state)
        self.last_target_update = int(state.get("last_target_update", 0))
        # The target network is not stored: it restarts as a copy of the restored weights.
        self.target_module.load_state_dict(self.module.state_dict())
