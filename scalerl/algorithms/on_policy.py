"""The on-policy loop that PPO and PG share (ARCHITECTURE.md's one loop, as written).

One iteration: sample a rollout from every EnvRunner with the current policy, update each
trained module on its whole batch (the learner computes the advantages and runs its
epochs), and send the new weights back to the EnvRunners.
"""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.algorithm import Algorithm
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.learner_group import validate_minibatch_size, validate_num_learners
from scalerl.utils.batch import concat_fragments, per_module


def validate_on_policy_learners(config: Any) -> None:
    """With `num_learners > 0`: each learner needs whole env columns of a single-agent
    rollout, and its share of the minibatch."""
    if config.num_learners > 0:
        (validate_minibatch_size if config.is_multi_agent else validate_num_learners)(config)


class OnPolicyAlgorithm(Algorithm):
    """An Algorithm whose `training_step` is the on-policy loop above."""

    def training_step(self) -> dict[str, Any]:
        """Sample rollouts from every EnvRunner, update on them, sync the new weights.

        Returns:
            {"learners": {module_id: metrics}}.
        """
        # 1. Collect on-policy rollouts from every EnvRunner.
        with self._timer("env_runner_sampling_timer"):
            samples = self.env_runner_group.sample()
        fragments, metrics = zip(*samples)
        self.record_sampling(list(metrics))
        # 2. The learners' update on the whole batch, per module (advantages, epochs).
        with self._timer("learner_update_timer"):
            if self.config.is_multi_agent:
                batches = per_module(fragments)
            else:
                batches = {DEFAULT_MODULE_ID: concat_fragments(list(fragments))}
            timestep = self.num_env_steps_sampled_lifetime
            learners = self.learner_group.update(batches, timestep=timestep)
        # 3. Send the new weights to the EnvRunners (one object-store put).
        with self._timer("synch_weights"):
            self.env_runner_group.sync_weights(self.runner_weights())
        return {"learners": learners}
