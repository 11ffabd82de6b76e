"""What the replay-based algorithms (DQN, SAC) share: one replay buffer per module, the
buffer factory, runner batches split by module, and buffers in checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.columns import Columns
from scalerl.utils.checkpoints import CheckpointView
from scalerl.utils.errors import ConfigError
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer, n_step_transitions
from scalerl.utils.replay_buffers.storage import META_FILE, restore_buffer, save_buffer_state

REPLAY_DIR = "replay_buffer"  # in checkpoints, with `store_buffer_in_checkpoints`


def build_replay_buffer(
    replay_buffer_config: dict, capacity: int | None = None, default_type: str = "prioritized"
) -> ReplayBuffer:
    """The buffer `replay_buffer_config` describes (`capacity` overrides its capacity)."""
    rb = {"capacity": 50_000, "alpha": 0.6, "beta": 0.4, **replay_buffer_config}
    capacity = int(rb["capacity"] if capacity is None else capacity)
    if rb.get("type", default_type) == "prioritized":
        return PrioritizedReplayBuffer(capacity, alpha=float(rb["alpha"]), beta=float(rb["beta"]))
    return ReplayBuffer(capacity)


def check_buffer_exponents(replay_buffer_config: dict) -> None:
    """Prioritized replay's `alpha` and `beta`: finite numbers >= 0."""
    for key in ("alpha", "beta"):
        value = replay_buffer_config.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ConfigError(
                f"`replay_buffer_config[{key!r}]` must be a number >= 0, got {value!r}."
            )


def mean_rows(rows: list[dict[str, Any]]) -> dict[str, float]:
    """An iteration's update metrics in one dict: means over the updates, except
    `num_module_steps_trained` (summed) and the other `num_*` counters (lifetime: the
    last). Scalar tensors are stacked and converted once (not one host sync per update)."""
    out: dict[str, float] = {}
    for key in rows[0] if rows else ():
        values = [row[key] for row in rows]
        if key == "num_module_steps_trained":
            out[key] = float(sum(values))
        elif key.startswith("num_"):
            out[key] = float(values[-1])
        elif all(isinstance(v, torch.Tensor) for v in values):
            out[key] = float(torch.stack(values).float().mean())
        else:
            out[key] = float(np.mean([float(v) for v in values]))
    return out


class UpdateCredit:
    """How many updates newly sampled transitions buy, one meaning for every replay
    algorithm: `training_intensity` is replayed / sampled transitions (RLlib's meaning).

    A round adds `training_intensity * sampled / per_update` updates of credit per module
    (`per_update`: transitions one update replays, e.g. the train batch size); whole updates
    are taken and the fraction carries over, so 1.0 with 4-transition rounds and batches of
    32 is one update every 8 rounds, not one per round. Without `training_intensity` an
    algorithm's own default ratio applies (`default`: updates for this round).
    """

    def __init__(self) -> None:
        self.credit: dict[str, float] = {}

    def take(
        self,
        module_id: str,
        training_intensity: float | None,
        sampled: int,
        per_update: int,
        default: float,
    ) -> int:
        """Add this round's credit for `module_id` and take the whole updates it buys.

        Args:
            module_id: The module whose credit this is.
            training_intensity: Replayed / sampled transitions, or None for `default`.
            sampled: Transitions sampled this round.
            per_update: Transitions one update replays.
            default: Updates this round when `training_intensity` is None.

        Returns:
            The number of updates to run now; the fraction is kept for later rounds.
        """
        credit = self.credit.get(module_id, 0.0)
        if training_intensity is None:
            credit += default
        else:
            credit += training_intensity * sampled / per_update
        updates = int(credit)
        self.credit[module_id] = credit - updates
        return updates


class ReplayMixin:
    """For an Algorithm with `self.replay_buffers: {module_id: buffer}`."""

    replay_buffers: dict[str, ReplayBuffer]

    @property
    def replay_buffer(self) -> ReplayBuffer:
        """The buffer of the (single-agent) default module."""
        return self.replay_buffers[DEFAULT_MODULE_ID]

    @replay_buffer.setter
    def replay_buffer(self, buffer: ReplayBuffer) -> None:
        self.replay_buffers = {DEFAULT_MODULE_ID: buffer}

    def module_configs(self) -> dict[str, Any]:
        """Module id -> its config (per-module overrides applied), for every module."""
        return {m: self.config.get_config_for_module(m) for m in self.learner_group.module_ids}

    def trained_module_ids(self) -> list[str]:
        """The modules in `policies_to_train` (all by default), in module order."""
        trained = self.learner_group.policies_to_train
        return [m for m in self.learner_group.module_ids if m in trained]

    def by_module(self, batch: dict) -> list[tuple[str, dict]]:
        """A runner's batch as (module_id, fragment) pairs."""
        return list(batch.items()) if self.config.is_multi_agent else [(DEFAULT_MODULE_ID, batch)]

    def sample_into_replay(self) -> dict[str, int]:
        """Sample a fragment from every EnvRunner and store it as n-step transitions in
        its module's buffer (with the module's own `n_step` and `gamma`: per-module
        overrides apply); returns the number of transitions added per module."""
        configs = self.module_configs()
        with self._timer("env_runner_sampling_timer"):
            samples = self.env_runner_group.sample()
        fragments, metrics = zip(*samples)
        self.record_sampling(list(metrics))
        sampled = dict.fromkeys(self.replay_buffers, 0)
        for batch in fragments:
            for mid, fragment in self.by_module(batch):
                cfg = configs[mid]
                transitions = n_step_transitions(fragment, cfg.n_step, cfg.gamma)
                self.replay_buffers[mid].add(transitions)
                sampled[mid] += len(transitions[Columns.REWARDS])
        return sampled

    def replay(self, module_id: str, sampled: int, default_updates: float) -> list[dict]:
        """Updates of `module_id` (through the learner group) on batches replayed from its
        buffer for `sampled` new transitions (`UpdateCredit`; `default_updates` without
        `training_intensity`); each update's TD errors go back to a prioritized buffer.
        Returns the updates' metrics."""
        buffer = self.replay_buffers[module_id]
        cfg = self.config.get_config_for_module(module_id)
        B = cfg.train_batch_size
        rows = []
        num_updates = self.update_credit.take(
            module_id, cfg.training_intensity, sampled, B, default_updates
        )
        for _ in range(num_updates):
            batch = buffer.sample(B, self.replay_rng)
            timestep = self.num_env_steps_sampled_lifetime
            out = self.learner_group.update({module_id: batch}, timestep)[module_id]
            td = out.pop("td_error")
            if isinstance(buffer, PrioritizedReplayBuffer):
                buffer.update_priorities(batch[Columns.INDICES], td)
            rows.append(out)
        return rows

    def replay_metrics(self) -> dict[str, Any]:
        """The stored transitions in all buffers (and per module when multi-agent)."""
        out: dict[str, Any] = {"num_transitions": sum(len(b) for b in self.replay_buffers.values())}
        if self.config.is_multi_agent:
            out.update({f"{m}/num_transitions": len(b) for m, b in self.replay_buffers.items()})
        return out

    def save_extra_state(self, directory: Path) -> None:
        """Write every replay buffer under `directory` if `store_buffer_in_checkpoints`."""
        if self.config.store_buffer_in_checkpoints:
            for mid, buffer in self.replay_buffers.items():
                save_buffer_state(self._buffer_dir(directory, mid), buffer.get_state())

    def restore_extra_state(self, view: CheckpointView) -> None:
        """Load the replay buffers stored in the checkpoint, if `store_buffer_in_checkpoints`."""
        if not self.config.store_buffer_in_checkpoints:
            return
        for mid, buffer in self.replay_buffers.items():
            rel = self._buffer_dir(Path(), mid).as_posix()
            if view.has(f"{rel}/{META_FILE}"):
                restore_buffer(buffer, view.sub(rel))

    def _buffer_dir(self, directory: Path, module_id: str) -> Path:
        if self.config.is_multi_agent:
            return directory / REPLAY_DIR / module_id
        return directory / REPLAY_DIR
