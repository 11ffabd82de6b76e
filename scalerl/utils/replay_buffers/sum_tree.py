"""A sum tree (and min tree) over priorities, vectorized over batches with numpy.

The tree of Schaul et al. (2016), "Prioritized Experience Replay", App. B.2.1: leaves
hold priorities, each inner node the sum of its children, so sampling proportionally to
priority is a root-to-leaf descent and an update is a leaf-to-root walk, both O(log n).
RLlib's equivalent is `ray.rllib.execution.segment_tree.SumSegmentTree` /
`MinSegmentTree`; here both live in one class and every operation takes a batch.

Layout: a complete binary tree over `size` = the next power of two >= capacity leaves,
stored heap-style in an array of 2 * size (node i has children 2i and 2i+1, root 1,
leaves size .. 2 * size - 1). Unused leaves hold priority 0 (sum) and +inf (min).
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Priorities of `capacity` items: batch updates, total, prefix-sum search, min.

    Args:
        capacity: Number of items (leaves); need not be a power of two.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}.")
        self.capacity = int(capacity)
        self.size = 1 << (self.capacity - 1).bit_length()
        self.depth = self.size.bit_length() - 1  # levels below the root
        self._sum = np.zeros(2 * self.size, dtype=np.float64)
        self._min = np.full(2 * self.size, np.inf, dtype=np.float64)

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set `priorities` (>= 0) at item `indices` (a later duplicate wins)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape)
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"SumTree indices must lie in [0, {self.capacity}).")
        if not np.all(priorities >= 0) or not np.all(np.isfinite(priorities)):
            raise ValueError("SumTree priorities must be finite and >= 0.")
        nodes = indices + self.size
        self._sum[nodes] = priorities
        self._min[nodes] = priorities
        # Walk up level by level, recomputing each touched parent once. Node n's children
        # 2n, 2n+1 are row n of the (size, 2) views, so one gather fetches both.
        sum_pairs, min_pairs = self._sum.reshape(-1, 2), self._min.reshape(-1, 2)
        nodes = np.unique(nodes >> 1)
        while len(nodes) > 1:
            s, m = sum_pairs[nodes], min_pairs[nodes]
            self._sum[nodes] = s[:, 0] + s[:, 1]
            self._min[nodes] = np.minimum(m[:, 0], m[:, 1])
            nodes = np.unique(nodes >> 1)
        # One path left to the root: scalar steps are far cheaper than numpy calls here.
        n = int(nodes[0])
        sums, mins = self._sum, self._min
        while n >= 1:
            sums[n] = sums[2 * n] + sums[2 * n + 1]
            mins[n] = min(mins[2 * n], mins[2 * n + 1])
            n >>= 1

    def get(self, indices: np.ndarray) -> np.ndarray:
        """The priorities at item `indices`."""
        return self._sum[np.asarray(indices, dtype=np.int64) + self.size]

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self._sum[1])

    @property
    def min(self) -> float:
        """Smallest priority of the stored items (+inf when empty)."""
        return float(self._min[1])

    def find_prefix_sum(self, values: np.ndarray) -> np.ndarray:
        """For each v in `values` (in [0, total)): the item i with
        sum(p[:i]) <= v < sum(p[:i + 1]). Items of priority 0 are never returned."""
        v = np.asarray(values, dtype=np.float64).reshape(-1).copy()
        nodes = np.ones(v.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self._sum[left]
            # Go right when v is past the left subtree, but never into an empty subtree
            # (v may reach a boundary through rounding); never left into an empty one.
            right_sum = self._sum[left + 1]
            go_right = ((v >= left_sum) & (right_sum > 0)) | (left_sum <= 0)
            v = np.where(go_right, v - left_sum, v)
            nodes = left + go_right
        return nodes - self.size
