"""Replay helpers the off-policy algorithms share: the buffer factory, the update credit
(`training_intensity`), and an iteration's update metrics in one dict."""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.utils.errors import ConfigError
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer

REPLAY_DIR = "replay_buffer"  # in checkpoints, with `store_buffer_in_checkpoints`


BUFFER_TYPES = ("uniform", "prioritized")
# RLlib's buffer class names -> scalerl's kinds (multi-agent runs keep one buffer per module,
# which is what RLlib's multi-agent buffers do too).
RLLIB_BUFFER_NAMES = {
    "EpisodeReplayBuffer": "uniform",
    "MultiAgentEpisodeReplayBuffer": "uniform",
    "PrioritizedEpisodeReplayBuffer": "prioritized",
    "MultiAgentPrioritizedEpisodeReplayBuffer": "prioritized",
    # The old API stack's names, as older tuned examples write them.
    "ReplayBuffer": "uniform",
    "MultiAgentReplayBuffer": "uniform",
    "PrioritizedReplayBuffer": "prioritized",
    "MultiAgentPrioritizedReplayBuffer": "prioritized",
}


def buffer_kind(replay_buffer_config: Any, default_type: str) -> Any:
    """`replay_buffer_config["type"]` as "uniform" or "prioritized" (RLlib's class names
    map to these); anything else is returned as given, for the caller's error."""
    kind = replay_buffer_config.get("type", default_type)
    return RLLIB_BUFFER_NAMES.get(kind, kind) if isinstance(kind, str) else kind


def check_buffer_type(replay_buffer_config: Any, default_type: str) -> None:
    """ConfigError unless `replay_buffer_config` is a dict naming a buffer scalerl has."""
    if not isinstance(replay_buffer_config, dict) or (
        buffer_kind(replay_buffer_config, default_type) not in BUFFER_TYPES
    ):
        raise ConfigError(
            f"`replay_buffer_config` must be a dict with `type` in {BUFFER_TYPES} or RLlib's "
            f"{sorted(RLLIB_BUFFER_NAMES)} (and `capacity`, `alpha`, `beta`); got "
            f"{replay_buffer_config!r}."
        )


def check_n_step(config: Any) -> None:
    """`n_step`: an integer >= 1, or RLlib's range (low, high) with 1 <= low <= high for
    algorithms that store n-step transitions in the driver (DQN, SAC): each stored
    fragment then gets an n drawn uniformly from [low, high]."""
    from scalerl.algorithms.off_policy import OffPolicyAlgorithm

    n = config.n_step
    if not isinstance(n, list | tuple):
        config._check_int("n_step", 1, extra="or a range (low, high)")
        return
    algo = config.algo_class
    ranges = isinstance(algo, type) and issubclass(algo, OffPolicyAlgorithm)
    if not (ranges and algo.store is OffPolicyAlgorithm.store):
        name = getattr(algo, "__name__", type(config).__name__)
        raise ConfigError(f"`n_step={n!r}`: {name} takes an integer n_step (no range).")
    if not (
        len(n) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in n)
        and 1 <= n[0] <= n[1]
    ):
        raise ConfigError(
            f"`n_step` as a range must be (low, high) with integers 1 <= low <= high, got {n!r}."
        )


def draw_n_step(n_step: Any, rng: np.random.Generator) -> int:
    """The n of one stored fragment: `n_step`, or uniform in [low, high] for a range."""
    if isinstance(n_step, list | tuple):
        return int(rng.integers(n_step[0], n_step[1] + 1))
    return int(n_step)


def build_replay_buffer(
    replay_buffer_config: dict, capacity: int | None = None, default_type: str = "prioritized"
) -> ReplayBuffer:
    """The buffer `replay_buffer_config` describes (`capacity` overrides its capacity)."""
    rb = {"capacity": 50_000, "alpha": 0.6, "beta": 0.4, **replay_buffer_config}
    capacity = int(rb["capacity"] if capacity is None else capacity)
    if buffer_kind(rb, default_type) == "prioritized":
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
