"""A replay shard: one prioritized (or uniform) buffer in its own Ray actor.

EnvRunners' transitions reach a shard through the object store (the driver passes only
references), the learner pulls batches from every shard and sends the new priorities back.
More shards spread the memory and the sampling work over more processes (and machines)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.algorithms.replay import build_replay_buffer
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer


class ReplayShard:
    """`replay_buffer_config` as DQN's, holding `capacity` transitions."""

    def __init__(self, replay_buffer_config: dict, capacity: int, seed: int | None):
        self.buffer = build_replay_buffer(replay_buffer_config, capacity)
        self.rng = np.random.default_rng(seed)

    def add(self, data: tuple[dict[str, Any], np.ndarray | None]) -> int:
        """Store (transitions, initial priorities or None); returns the buffer size."""
        transitions, priorities = data
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            self.buffer.add(transitions, priorities)
        else:
            self.buffer.add(transitions)
        return len(self.buffer)

    def sample(self, batch_size: int) -> dict[str, Any] | None:
        """A replayed batch with `indices` (and `weights` when prioritized); None while empty."""
        if len(self.buffer) == 0:
            return None
        return self.buffer.sample(batch_size, self.rng)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of replayed `indices` from their TD errors (no-op when uniform)."""
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            self.buffer.update_priorities(indices, td_errors)

    def stats(self) -> dict[str, int]:
        """{"num_transitions", "num_added", "nbytes"} of this shard's buffer."""
        return {
            "num_transitions": len(self.buffer),
            "num_added": self.buffer.num_added,
            "nbytes": self.buffer.nbytes,
        }

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The buffer's (arrays, JSON-able metadata), for checkpoints."""
        return self.buffer.get_state()

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore the buffer from the (arrays, metadata) that `get_state` returned."""
        self.buffer.set_state(arrays, meta)
