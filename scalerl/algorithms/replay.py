"""Replay helpers the off-policy algorithms share: the buffer factory, the update credit
(`training_intensity`), and an iteration's update metrics in one dict."""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.utils.errors import ConfigError
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer

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
    last). `Learner.update` returns floats already (its minibatch means)."""
    out: dict[str, float] = {}
    for key in rows[0] if rows else ():
        values = [row[key] for row in rows]
        if key == "num_module_steps_trained":
            out[key] = float(sum(values))
        elif key.startswith("num_"):
            out[key] = float(values[-1])
        else:
            out[key] = float(np.mean(values))
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
