"""Fragments [T, N] <-> padded sequences [S, L] (utils.sequences) and the fragment keys of
stateful modules in concat/split (utils.batch)."""

from __future__ import annotations

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils.batch import concat_fragments, split_fragment
from scalerl.utils.sequences import SequenceLayout, sequence_starts


def test_layout_cuts_each_column_at_its_starts_and_pads():
    # T = 5, N = 2: column 0 starts at 0 and 3, column 1 at 0 only.
    layout = SequenceLayout.from_starts(np.array([[0, 0], [0, 1], [3, 0]]), T=5)
    np.testing.assert_array_equal(layout.mask, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(layout.t[0, :3], [0, 1, 2])
    np.testing.assert_array_equal(layout.t[2, :2], [3, 4])
    np.testing.assert_array_equal(layout.n[1], [1] * 5)
    x = np.arange(10.0).reshape(5, 2)
    seqs = layout.gather(x)
    np.testing.assert_array_equal(seqs[2, :2], [6.0, 8.0])
    np.testing.assert_array_equal(layout.scatter(seqs, 5, 2), x)


def test_layout_gathers_nested_columns():
    layout = SequenceLayout.from_starts(np.array([[0, 0], [2, 0]]), T=4)
    x = {"a": np.arange(4).reshape(4, 1), "b": (np.ones((4, 1, 3)),)}
    seqs = layout.gather(x)
    assert seqs["a"].shape == (2, 2) and seqs["b"][0].shape == (2, 2, 3)
    np.testing.assert_array_equal(seqs["a"], [[0, 1], [2, 3]])


def test_sequence_starts():
    counts = np.array([0, 3, 4, 1])
    assert sequence_starts(0, counts, 4).all()
    np.testing.assert_array_equal(sequence_starts(5, counts, 4), [True, False, True, False])


def fragment(T: int, N: int, starts: list[tuple[int, int]], offset: float) -> dict:
    return {
        Columns.REWARDS: np.full((T, N), offset, np.float32),
        "bootstrap_obs": np.full((N, 1), offset),
        "bootstrap_state": {"h": np.full((N, 2), offset)},
        "trunc_index": np.zeros((0, 2), np.int64),
        "trunc_obs": np.zeros((0, 1)),
        "trunc_state": {"h": np.zeros((0, 2))},
        "seq_index": np.array(starts, np.int64),
        Columns.STATE_IN: {"h": np.arange(2 * len(starts), dtype=float).reshape(-1, 2) + offset},
    }


def test_concat_and_split_keep_sequence_starts_with_their_envs():
    a = fragment(4, 2, [(0, 0), (0, 1), (2, 1)], 0.0)
    b = fragment(4, 1, [(0, 0), (1, 0)], 100.0)
    joined = concat_fragments([a, b])
    np.testing.assert_array_equal(joined["seq_index"][-2:], [[0, 2], [1, 2]])
    assert joined[Columns.STATE_IN]["h"].shape == (5, 2)
    assert joined["bootstrap_state"]["h"].shape == (3, 2)
    left, right = split_fragment(joined, 2)
    np.testing.assert_array_equal(left["seq_index"], [[0, 0], [0, 1], [2, 1]])
    np.testing.assert_array_equal(left[Columns.STATE_IN]["h"], a[Columns.STATE_IN]["h"])
    np.testing.assert_array_equal(right["seq_index"], [[0, 0], [1, 0]])
    np.testing.assert_array_equal(right[Columns.STATE_IN]["h"], b[Columns.STATE_IN]["h"])
    np.testing.assert_array_equal(right["bootstrap_state"]["h"], b["bootstrap_state"]["h"])
