"""The DQN learner: one gradient step per replayed batch, a target network, and the
exploration rate that travels with the weights."""

from __future__ import annotations

import copy
from typing import Any

import torch

from scalerl.algorithms.dqn.dqn_loss import dqn_loss
from scalerl.core.learner import Learner
from scalerl.core.rl_module import RLModuleSpec
from scalerl.utils.schedules import Scheduler


class DQNLearner(Learner):
    """The DQN learner: the TD loss on replayed batches, a target network and the epsilon
    schedule of the module's epsilon-greedy exploration.
    """

    one_step_per_batch = True

    def __init__(self, config: Any, module_spec: RLModuleSpec):
        super().__init__(config, module_spec)
        self.target_module = copy.deepcopy(self.module).requires_grad_(False)
        self.epsilon_schedule = Scheduler(config.epsilon)
        self.last_target_update = 0

    def before_update(self, timestep: int) -> dict[str, Any]:
        """The learning rate and epsilon (the module acts as the EnvRunners' copies do);
        noisy heads draw fresh weight noise for this update."""
        self.set_epsilon(timestep)
        if self.config.noisy:
            self.module.reset_noise()
        return super().before_update(timestep)

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """`dqn_loss` against the target network; logs the TD errors per sample."""
        loss, td_errors, stats = dqn_loss(
            self.module, self.target_module, batch, double_q=config.double_q, out=fwd_out
        )
        self.log_metrics(**stats)
        self.log_per_sample(td_error=td_errors)
        return loss

    def after_update(self, batch: dict[str, Any], timestep: int) -> dict[str, Any]:
        """Update the target network when it is due."""
        self.maybe_update_target(timestep)
        return {}

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
