"""The off-policy loop that DQN, SAC and R2D2 share, and the replay store it fills.

One iteration, until `min_sample_timesteps_per_iteration` env steps are sampled:

    1. sample a fragment from every EnvRunner (the current exploration policy) and store
       what it completes in each module's buffer (`store`: n-step transitions; R2D2:
       sequences);
    2. once `num_steps_sampled_before_learning_starts` steps are sampled, replay: every
       sampled transition buys `training_intensity` replayed ones (`UpdateCredit`, the
       fraction carried over); each replayed batch goes through the learner group and its
       TD errors back to a prioritized buffer;
    3. send the new weights to the EnvRunners.

APEX-DQN samples and replays asynchronously (`apex_dqn.py`) with the same buffers, update
credit meaning and learner group, in replay-shard actors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.replay import REPLAY_DIR, UpdateCredit, draw_n_step, mean_rows
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.columns import Columns
from scalerl.utils.checkpoints import CheckpointView
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer, n_step_transitions
from scalerl.utils.replay_buffers.storage import META_FILE, restore_buffer, save_buffer_state


class ReplayStore:
    """The replay buffers of an off-policy algorithm, one per module id, the RNG they are
    sampled with, and the update credit that new samples buy.

    Args:
        buffers: Module id -> its replay buffer (transitions or sequences).
        seed: Seeds the sampling RNG (None: fresh entropy).
    """

    def __init__(self, buffers: dict[str, ReplayBuffer], seed: int | None):
        self.buffers = buffers
        self.rng = np.random.default_rng(seed)
        self.credit = UpdateCredit()

    def batches(self, module_id: str, cfg: Any, sampled: int, per_update: int, default: float):
        """Replayed batches of `cfg.train_batch_size` for `module_id`, as many as the update
        credit of `sampled` new transitions buys (`default` without `training_intensity`;
        `per_update`: transitions one update replays)."""
        buffer = self.buffers[module_id]
        if len(buffer) == 0:
            return
        updates = self.credit.take(module_id, cfg.training_intensity, sampled, per_update, default)
        for _ in range(updates):
            yield buffer.sample(cfg.train_batch_size, self.rng)

    def update_priorities(self, module_id: str, batch: dict, out: dict[str, Any]) -> None:
        """Take the update's per-sample TD errors (and R2D2's trained-step mask) out of its
        metrics `out` and, for a prioritized buffer, set the replayed samples' priorities."""
        td = out.pop("td_error")
        mask = out.pop("td_mask", None)
        buffer = self.buffers[module_id]
        if isinstance(buffer, PrioritizedReplayBuffer):
            args = (td,) if mask is None else (td, mask)
            buffer.update_priorities(batch[Columns.INDICES], *args)

    def metrics(self, multi_agent: bool) -> dict[str, Any]:
        """Stored items in all buffers (and per module when multi-agent)."""
        out: dict[str, Any] = {"num_transitions": sum(len(b) for b in self.buffers.values())}
        if multi_agent:
            out.update({f"{m}/num_transitions": len(b) for m, b in self.buffers.items()})
        return out

    def save(self, directory: Path, multi_agent: bool) -> None:
        """Write every buffer under `directory/replay_buffer` (one folder per module when
        multi-agent)."""
        for mid, buffer in self.buffers.items():
            save_buffer_state(_buffer_dir(directory, mid, multi_agent), buffer.get_state())

    def restore(self, view: CheckpointView, multi_agent: bool) -> None:
        """Load the buffers a checkpoint stored (buffers it did not store stay empty)."""
        for mid, buffer in self.buffers.items():
            rel = _buffer_dir(Path(), mid, multi_agent).as_posix()
            if view.has(f"{rel}/{META_FILE}"):
                restore_buffer(buffer, view.sub(rel))


def _buffer_dir(directory: Path, module_id: str, multi_agent: bool) -> Path:
    return directory / REPLAY_DIR / module_id if multi_agent else directory / REPLAY_DIR


class OffPolicyAlgorithm(Algorithm):
    """An Algorithm whose `training_step` is the off-policy loop above.

    Subclasses build the store's buffers (`make_replay_buffers`), say how fragments are
    stored (`store`) and what one update replays by default; they may add exploration
    metrics (`exploration_metrics`) and weights for the EnvRunners (`sync_runners`).
    """

    # Once learning started, sync weights to the EnvRunners every round, not only after
    # updates (DQN: the epsilon schedule moves between updates).
    sync_every_round = False

    def __init__(self, config: Any):
        super().__init__(config)
        self.replay = ReplayStore(self.make_replay_buffers(), config.seed)

    # -- what subclasses supply ---------------------------------------------------------
    def make_replay_buffers(self) -> dict[str, ReplayBuffer]:
        """Module id -> an empty replay buffer."""
        raise NotImplementedError

    def store(self, fragments: list[dict], sources: list[Any]) -> dict[str, int]:
        """Store the EnvRunners' `fragments` (from runner `sources`) in the buffers as
        n-step transitions, with each module's own `n_step` and `gamma` (per-module
        overrides apply); returns the transitions added per module."""
        added = dict.fromkeys(self.replay.buffers, 0)
        for batch in fragments:
            multi = self.config.is_multi_agent
            for mid, fragment in batch.items() if multi else [(DEFAULT_MODULE_ID, batch)]:
                cfg = self.config.get_config_for_module(mid)
                n = draw_n_step(cfg.n_step, self.replay.rng)  # RLlib's (low, high) too
                transitions = n_step_transitions(fragment, n, cfg.gamma)
                self.replay.buffers[mid].add(transitions)
                added[mid] += len(transitions[Columns.REWARDS])
        return added

    def steps_per_update(self, cfg: Any) -> int:
        """Transitions one update replays (a module's config `cfg`)."""
        return cfg.train_batch_size

    def default_updates(self, sampled: int) -> float:
        """Updates a round of `sampled` transitions buys without `training_intensity`."""
        return 1.0

    def exploration_metrics(self, module_id: str) -> dict[str, float]:
        """Extra learner results per module (e.g. DQN's current epsilon)."""
        return {}

    def sync_runners(self) -> None:
        """Send the learners' current weights to the EnvRunners."""
        self.env_runner_group.sync_weights(self.runner_weights())

    # -- the loop -------------------------------------------------------------------------
    def training_step(self) -> dict[str, Any]:
        """Sample into replay and replay `training_intensity` transitions per sampled one,
        until `min_sample_timesteps_per_iteration` env steps are sampled.

        Returns:
            The learner metrics per trained module and the replay buffers' sizes.
        """
        cfg = self.config
        trained = self.learner_group.policies_to_train
        rows = {mid: [] for mid in self.learner_group.module_ids if mid in trained}
        start = self.num_env_steps_sampled_lifetime
        while self.num_env_steps_sampled_lifetime - start < cfg.min_sample_timesteps_per_iteration:
            # 1. Sample with the current exploration policy; store what it completes.
            with self._timer("env_runner_sampling_timer"):
                samples = self.env_runner_group.sample()
            fragments, metrics = zip(*samples)
            self.record_sampling(list(metrics))
            sampled = self.store(list(fragments), self.env_runner_group.last_sample_sources)
            if self.num_env_steps_sampled_lifetime < cfg.num_steps_sampled_before_learning_starts:
                continue
            # 2. Replay `training_intensity` transitions per sampled one, per module.
            updated = False
            with self._timer("learner_update_timer"):
                for mid, module_rows in rows.items():
                    mcfg = self.config.get_config_for_module(mid)
                    n, per_update = sampled.get(mid, 0), self.steps_per_update(mcfg)
                    for batch in self.replay.batches(
                        mid, mcfg, n, per_update, self.default_updates(n) if n else 0.0
                    ):
                        timestep = self.num_env_steps_sampled_lifetime
                        out = self.learner_group.update({mid: batch}, timestep)[mid]
                        self.replay.update_priorities(mid, batch, out)
                        module_rows.append(out)
                        updated = True
            # 3. The new weights to the EnvRunners.
            if updated or self.sync_every_round:
                with self._timer("synch_weights"):
                    self.sync_runners()
        results = {m: {**mean_rows(r), **self.exploration_metrics(m)} for m, r in rows.items()}
        return {"learners": results, "replay_buffer": self.replay_metrics()}

    # -- replay state -------------------------------------------------------------------
    @property
    def replay_buffers(self) -> dict[str, ReplayBuffer]:
        """Module id -> its replay buffer."""
        return self.replay.buffers

    @property
    def replay_buffer(self) -> ReplayBuffer:
        """The buffer of the (single-agent) default module."""
        return self.replay.buffers[DEFAULT_MODULE_ID]

    def replay_metrics(self) -> dict[str, Any]:
        """The `replay_buffer` results: stored transitions (per module if multi-agent)."""
        return self.replay.metrics(self.config.is_multi_agent)

    def save_extra_state(self, directory: Path) -> None:
        """Write the replay buffers into a checkpoint if `store_buffer_in_checkpoints`."""
        if self.config.store_buffer_in_checkpoints:
            self.replay.save(directory, self.config.is_multi_agent)

    def restore_extra_state(self, view: CheckpointView) -> None:
        """Load the replay buffers from a checkpoint if `store_buffer_in_checkpoints`."""
        if self.config.store_buffer_in_checkpoints:
            self.replay.restore(view, self.config.is_multi_agent)
