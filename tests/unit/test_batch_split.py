"""Splitting batches over data-parallel learners by their schema (`split_for_learners`)."""

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils.batch import concat_columns, split_column, split_for_learners, split_samples


def column(ends, length, truncated=()):
    """A one-column [M, 1] fragment whose trajectories end at rows `ends`."""
    rng = np.random.default_rng(0)
    terminated = np.zeros((length, 1), dtype=bool)
    terminated[list(ends), 0] = True
    truncateds = np.zeros((length, 1), dtype=bool)
    trunc_index = np.array([[t, 0] for t in truncated], dtype=np.int64).reshape(-1, 2)
    truncateds[list(truncated), 0] = True
    terminated[list(truncated), 0] = False
    return {
        Columns.OBS: rng.normal(size=(length, 1, 3)).astype(np.float32),
        Columns.REWARDS: np.arange(length, dtype=np.float32)[:, None],
        Columns.TERMINATEDS: terminated,
        Columns.TRUNCATEDS: truncateds,
        Columns.BOOTSTRAP_OBS: rng.normal(size=(1, 3)).astype(np.float32),
        Columns.TRUNC_INDEX: trunc_index,
        Columns.TRUNC_OBS: rng.normal(size=(len(trunc_index), 3)).astype(np.float32),
    }


def test_a_column_splits_only_after_trajectory_ends():
    # Trajectories end at rows 2, 5 (truncated), 9, 11 (truncated): 12 rows.
    fragment = column(ends=[2, 9], length=12, truncated=[5, 11])
    parts = split_column(fragment, 2)
    # Half of 12 is 6: the nearest trajectory end is row 5 (cut after it).
    assert [len(p[Columns.REWARDS]) for p in parts] == [6, 6]
    last_rows = [p[Columns.TERMINATEDS][-1, 0] or p[Columns.TRUNCATEDS][-1, 0] for p in parts]
    assert all(last_rows)
    # Truncation rows are re-indexed to each part, with their observations.
    np.testing.assert_array_equal(parts[0][Columns.TRUNC_INDEX], [[5, 0]])
    np.testing.assert_array_equal(parts[1][Columns.TRUNC_INDEX], [[5, 0]])
    np.testing.assert_array_equal(parts[1][Columns.TRUNC_OBS], fragment[Columns.TRUNC_OBS][[1]])
    joined = concat_columns(parts)
    for key in (Columns.OBS, Columns.REWARDS, Columns.TRUNC_INDEX, Columns.TRUNC_OBS):
        np.testing.assert_array_equal(joined[key], fragment[key])
    # Never inside a trajectory: ends at rows 2 and 9, the nearest to 6 is 2.
    assert [len(p[Columns.REWARDS]) for p in split_column(column([2, 9], 12), 2)] == [3, 9]
    three = split_column(fragment, 3)
    assert [len(p[Columns.REWARDS]) for p in three] == [3, 3, 6]  # nearest to rows 4 and 8
    assert split_column(fragment, 5) is None  # 4 trajectories


def test_replayed_samples_split_in_order_and_small_batches_are_copied():
    batch = {Columns.REWARDS: np.arange(7.0), Columns.OBS: np.arange(14.0).reshape(7, 2)}
    parts = split_samples(batch, 3)
    assert [len(p[Columns.REWARDS]) for p in parts] == [3, 2, 2]
    np.testing.assert_array_equal(
        np.concatenate([p[Columns.OBS] for p in parts]), batch[Columns.OBS]
    )
    shards, copies = split_for_learners(batch, 2)
    assert not copies and len(shards) == 2
    shards, copies = split_for_learners(batch, 8)  # fewer samples than learners
    assert copies and all(s is batch for s in shards)
    # One trajectory cannot be split: every learner trains on it whole.
    shards, copies = split_for_learners(column(ends=[3], length=4), 2)
    assert copies and len(shards) == 2
