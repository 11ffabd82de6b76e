"""Replay of fixed-length sequences with their stored recurrent state (R2D2, Kapturowski
et al. 2019), uniform or prioritized.

A sequence is one row of every column, all preallocated as [capacity, ...] arrays on the
first `add` (the storage of `ReplayBuffer`), with L = burn_in + max_seq_len steps:

    obs          [L + 1, ...]  o_0 .. o_{l-1} and, at position l, the observation after the
                               last valid step (the next one, or the true final one of a
                               truncated episode); zero after it
    actions      [L]           a_t (zero-padded after the episode's end)
    rewards      [L]           r_t (zero-padded)
    terminateds  [L] bool      true only at a terminating last step
    mask         [L] bool      the l valid steps (a sequence never crosses an episode end)
    burn_in      []  int       leading steps that only unroll the network (0 at episode start)
    state_in     {k: [...]}    the module's state before o_0, as the EnvRunner had it
    prev_action  [...], prev_reward []: the module's a_{-1}, r_{-1} inputs at o_0

Bytes per sequence (`bytes_per_sequence`): e.g. 1.4 KB for stateless CartPole with
L = 40 and a 64-cell LSTM (obs 41 x 2 float32, actions 40 int64, rewards 40 float32, two
40-byte masks, state 2 x 64 float32); 10,000 sequences hold 14 MB.

Sequence priority (R2D2's eq. for prioritized replay): with the absolute n-step TD errors
|delta_t| of the trained steps, p = eta max_t |delta_t| + (1 - eta) mean_t |delta_t|, eta = 0.9.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils import nested
from scalerl.utils.replay_buffers.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer

# The stored columns (see `utils.batch_schema.SEQUENCES`; sampling adds indices, weights).
SEQUENCE_COLUMNS = (
    Columns.OBS,
    Columns.ACTIONS,
    Columns.REWARDS,
    Columns.TERMINATEDS,
    Columns.SEQ_MASK,
    Columns.BURN_IN,
    Columns.STATE_IN,
    Columns.SEQ_PREV_ACTION,
    Columns.SEQ_PREV_REWARD,
)


def sequence_priorities(td_errors: np.ndarray, mask: np.ndarray, eta: float = 0.9) -> np.ndarray:
    """p_i = eta max_t |delta_it| + (1 - eta) mean_t |delta_it| over the steps in `mask` [B, L].

    A sequence without any masked-in step gets priority 0 (the buffer adds its eps)."""
    td = np.abs(np.asarray(td_errors, dtype=np.float64))
    mask = np.asarray(mask, dtype=bool)
    count = mask.sum(axis=1)
    td = np.where(mask, td, 0.0)
    mean = td.sum(axis=1) / np.maximum(count, 1)
    return eta * td.max(axis=1, initial=0.0) + (1.0 - eta) * mean


class SequenceReplayBuffer(ReplayBuffer):
    """A ring buffer of sequences (columns as in the module docstring), sampled uniformly.

    Args:
        capacity: Maximum number of sequences; the oldest are overwritten.
        eta: Weight of the max in the sequence priority (used by the prioritized variant).
    """

    def __init__(self, capacity: int, eta: float = 0.9, **kwargs: Any):
        super().__init__(capacity, **kwargs)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"Sequence replay `eta` must be in [0, 1], got {eta}.")
        self.eta = float(eta)

    def add(self, batch: dict[str, Any]) -> np.ndarray:
        """Store sequences [B, ...]; returns the slots they were written to."""
        missing = [k for k in SEQUENCE_COLUMNS if k not in batch]
        if missing:
            raise KeyError(f"SequenceReplayBuffer.add: missing columns {missing}.")
        L = batch[Columns.SEQ_MASK].shape[1]
        obs_len = nested.first_leaf(batch[Columns.OBS]).shape[1]
        if obs_len != L + 1:
            raise ValueError(
                f"SequenceReplayBuffer.add: obs must have L + 1 = {L + 1} steps (the last is "
                f"the bootstrap observation), got {obs_len}."
            )
        return super().add(batch)

    @property
    def sequence_length(self) -> int:
        """L = burn_in + max_seq_len (0 before the first add)."""
        return 0 if self._storage is None else self._storage[Columns.SEQ_MASK].shape[1]

    @property
    def bytes_per_sequence(self) -> int:
        """The memory one stored sequence takes, in bytes (all columns)."""
        return self.nbytes // self.capacity

    @property
    def num_steps(self) -> int:
        """Valid env steps in the stored sequences (overlapping burn-in steps count twice)."""
        if self._storage is None:
            return 0
        return int(self._storage[Columns.SEQ_MASK][: self._size].sum())

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = super().get_state()
        meta["eta"] = self.eta
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super().set_state(arrays, meta)
        self.eta = float(meta["eta"])


class PrioritizedSequenceReplayBuffer(SequenceReplayBuffer, PrioritizedReplayBuffer):
    """Prioritized replay of sequences: P(i) = p_i^alpha / sum_k p_k^alpha, importance
    weights as `PrioritizedReplayBuffer`; p_i from the TD errors of the sequence's steps.

    Args:
        capacity: Maximum number of sequences.
        alpha: Prioritization exponent (R2D2: 0.9).
        beta: Importance-weight exponent (R2D2: 0.6).
        eta: Weight of the max in the sequence priority (R2D2: 0.9).
    """

    def __init__(
        self,
        capacity: int,
        alpha: float = 0.9,
        beta: float = 0.6,
        eta: float = 0.9,
        eps: float = 1e-6,
    ):
        super().__init__(capacity, eta=eta, alpha=alpha, beta=beta, eps=eps)

    def update_priorities(
        self, indices: np.ndarray, td_errors: np.ndarray, mask: np.ndarray | None = None
    ) -> None:
        """New priorities of the sampled `indices` from their TD errors [B, L] on the steps
        in `mask` [B, L] (the trained ones); 1-D `td_errors` are taken as priorities."""
        td = np.asarray(td_errors)
        if td.ndim == 2:
            td = sequence_priorities(
                td, np.ones(td.shape, bool) if mask is None else mask, self.eta
            )
        PrioritizedReplayBuffer.update_priorities(self, indices, td)
