"""Uniform and prioritized replay of transitions, stored as preallocated numpy arrays.

`ReplayBuffer` is RLlib's `ray.rllib.utils.replay_buffers.ReplayBuffer` (old stack) /
`EpisodeReplayBuffer` (new stack) for single transitions; `PrioritizedReplayBuffer` is
`PrioritizedReplayBuffer` / `PrioritizedEpisodeReplayBuffer` (Schaul et al., 2016).

Storage: one array per column leaf (nested dict/tuple observations and actions keep their
structure), each of shape [capacity, ...], allocated on the first `add` from that batch's
shapes and dtypes, written as a ring. Memory is therefore fixed after the first add:
`nbytes` = capacity * (bytes of one transition).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils import nested
from scalerl.utils.replay_buffers.sum_tree import SumTree


class ReplayBuffer:
    """A ring buffer of transitions, sampled uniformly.

    A batch is a dict of columns, each an array (or nested dict/tuple of arrays) with a
    leading batch dimension B: typically obs, actions, rewards, next_obs, terminateds
    (plus e.g. discounts from n-step returns); any extra columns are stored too.

    Args:
        capacity: Maximum number of transitions; the oldest are overwritten.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"ReplayBuffer capacity must be >= 1, got {capacity}.")
        self.capacity = int(capacity)
        self._storage: dict[str, Any] | None = None
        self._next = 0  # ring position of the next write
        self._size = 0
        self.num_added = 0  # transitions added over the buffer's life

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated storage (0 before the first add)."""
        if self._storage is None:
            return 0
        return sum(x.nbytes for x in nested.leaves(self._storage))

    def _allocate(self, batch: dict[str, Any]) -> None:
        self._storage = {
            k: nested.map_structure(
                lambda x: np.empty((self.capacity, *np.shape(x)[1:]), np.asarray(x).dtype), v
            )
            for k, v in batch.items()
        }

    def add(self, batch: dict[str, Any]) -> np.ndarray:
        """Store a batch of transitions [B, ...]; returns the slots they were written to."""
        sizes = {len(x) for x in nested.leaves(batch)}
        if len(sizes) != 1:
            raise ValueError(f"ReplayBuffer.add: columns have different lengths {sizes}.")
        if self._storage is None:
            self._allocate(batch)
        elif batch.keys() != self._storage.keys():
            raise KeyError(
                f"ReplayBuffer.add: columns {sorted(batch)} differ from the stored "
                f"{sorted(self._storage)}."
            )
        B = sizes.pop()
        self.num_added += B
        if B > self.capacity:  # only the newest `capacity` would survive anyway
            batch = nested.map_structure(lambda x: x[B - self.capacity :], batch)
            B = self.capacity
        slots = (self._next + np.arange(B)) % self.capacity
        for k, v in batch.items():
            nested.assign(self._storage[k], slots, v)
        self._next = (self._next + B) % self.capacity
        self._size = min(self._size + B, self.capacity)
        return slots

    def _gather(self, indices: np.ndarray) -> dict[str, Any]:
        out = {k: nested.index(v, indices) for k, v in self._storage.items()}
        out[Columns.INDICES] = indices
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, Any]:
        """`batch_size` transitions drawn uniformly with replacement, plus their "indices"."""
        if self._size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty; add() first.")
        return self._gather(rng.integers(0, self._size, size=batch_size))

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(flat name -> array, JSON-able metadata): storable without pickle (safetensors).

        Only the filled slots are returned, so an empty or part-full buffer stays small.
        """
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {
            "capacity": self.capacity,
            "next": self._next,
            "size": self._size,
            "num_added": self.num_added,
            "spec": None,
        }
        if self._storage is not None:
            meta["spec"] = {k: nested.spec(v) for k, v in self._storage.items()}
            filled = nested.map_structure(lambda x: x[: self._size], self._storage)
            for k, v in filled.items():
                nested.flatten(v, k, arrays)
        json.dumps(meta)  # fail here, not in the checkpoint writer, if not JSON-able
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore from `get_state()`'s output (the capacity must match)."""
        if meta["capacity"] != self.capacity:
            raise ValueError(
                f"ReplayBuffer.set_state: state has capacity {meta['capacity']}, "
                f"this buffer {self.capacity}."
            )
        self._next, self._size = meta["next"], meta["size"]
        self.num_added = meta["num_added"]
        self._storage = None
        if meta["spec"] is not None:
            filled = {k: nested.unflatten(s, k, arrays) for k, s in meta["spec"].items()}
            self._allocate(filled)
            for k, v in filled.items():
                nested.assign(self._storage[k], slice(0, self._size), v)


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay: P(i) = p_i^alpha / sum_k p_k^alpha.

    New transitions get the largest priority seen so far, so each is replayed at least
    about once; `update_priorities` sets p_i = |td_i| + eps. Samples carry importance
    weights w_i = (N * P(i))^-beta / max_j w_j (the max over the whole buffer, from the
    min tree, as in the paper), which the learner multiplies into the loss.

    Args:
        capacity: Maximum number of transitions.
        alpha: Prioritization exponent (0 = uniform).
        beta: Importance-weight exponent; anneal it towards 1 by setting `beta` (or pass
            `beta=` to `sample`).
        eps: Added to |td error| so no transition gets priority 0.
    """

    def __init__(self, capacity: int, alpha: float = 0.6, beta: float = 0.4, eps: float = 1e-6):
        super().__init__(capacity)
        if alpha < 0:
            raise ValueError(f"PrioritizedReplayBuffer alpha must be >= 0, got {alpha}.")
        if eps <= 0:
            raise ValueError(f"PrioritizedReplayBuffer eps must be > 0, got {eps}.")
        self.alpha, self.beta, self.eps = float(alpha), float(beta), float(eps)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0  # before alpha

    def add(self, batch: dict[str, Any], priorities: np.ndarray | None = None) -> np.ndarray:
        """Store `batch`; its transitions get `priorities` (e.g. |TD errors| computed by
        the actors, as in Ape-X) or, without them, the largest priority seen so far."""
        slots = super().add(batch)
        if priorities is None:
            self.tree.set(slots, self.max_priority**self.alpha)
        else:
            # A batch larger than the buffer keeps only its newest `capacity` transitions.
            self.update_priorities(slots, np.asarray(priorities)[-len(slots) :])
        return slots

    def sample(
        self, batch_size: int, rng: np.random.Generator, beta: float | None = None
    ) -> dict[str, Any]:
        """`batch_size` transitions drawn proportionally to priority, with "weights".

        Stratified as in the paper: one draw from each of `batch_size` equal slices of the
        total priority, which lowers the variance of the batch's composition.
        """
        if self._size == 0:
            raise ValueError("PrioritizedReplayBuffer.sample: the buffer is empty; add() first.")
        beta = self.beta if beta is None else beta
        total = self.tree.total
        values = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        indices = self.tree.find_prefix_sum(np.minimum(values, np.nextafter(total, 0)))
        probs = self.tree.get(indices) / total
        # max_j w_j belongs to the smallest priority: (N * p_min / total)^-beta.
        weights = (probs / (self.tree.min / total)) ** -beta
        out = self._gather(indices)
        out[Columns.WEIGHTS] = weights.astype(np.float32)
        return out

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of sampled `indices` to |td_errors| + eps (NaN/inf errors, of
        an update the learner skipped, keep the transitions sampleable at the max priority)."""
        p = np.abs(np.asarray(td_errors, dtype=np.float64)).reshape(-1) + self.eps
        if not np.isfinite(p).all():
            p = np.where(np.isfinite(p), p, self.max_priority)
        self.max_priority = max(self.max_priority, float(p.max(initial=0.0)))
        self.tree.set(indices, p**self.alpha)

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = super().get_state()
        arrays["priorities"] = self.tree.get(np.arange(self._size))
        meta.update(alpha=self.alpha, beta=self.beta, eps=self.eps, max_priority=self.max_priority)
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super().set_state({k: v for k, v in arrays.items() if k != "priorities"}, meta)
        self.alpha, self.beta, self.eps = meta["alpha"], meta["beta"], meta["eps"]
        self.max_priority = meta["max_priority"]
        self.tree = SumTree(self.capacity)
        self.tree.set(np.arange(self._size), arrays["priorities"])
