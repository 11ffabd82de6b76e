"""SumTree: proportional sampling, updates, min, edge cases."""

import numpy as np
import pytest

from scalerl.utils.replay_buffers import SumTree


def _freqs(tree: SumTree, n: int, rng: np.random.Generator) -> np.ndarray:
    idx = tree.find_prefix_sum(rng.random(n) * tree.total)
    return np.bincount(idx, minlength=tree.capacity) / n


def _chi2(freqs: np.ndarray, probs: np.ndarray, n: int) -> float:
    m = probs > 0
    return float(n * np.sum((freqs[m] - probs[m]) ** 2 / probs[m]))


def test_sampling_proportions_match_priorities():
    rng = np.random.default_rng(0)
    p = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 5.5, 2.0, 1.0])
    tree = SumTree(len(p))
    tree.set(np.arange(len(p)), p)
    assert tree.total == pytest.approx(p.sum())
    n = 50_000
    # 7 degrees of freedom: chi2 < 24.3 has probability 0.999 under the null.
    assert _chi2(_freqs(tree, n, rng), p / p.sum(), n) < 24.3


def test_updates_change_proportions_and_min():
    rng = np.random.default_rng(1)
    tree = SumTree(6)  # not a power of two: 8 leaves, 2 unused
    assert tree.size == 8
    tree.set(np.arange(6), np.ones(6))
    assert tree.min == 1.0
    tree.set(np.array([2, 5]), np.array([10.0, 0.25]))
    p = np.array([1, 1, 10, 1, 1, 0.25])
    assert tree.total == pytest.approx(p.sum())
    assert tree.min == 0.25
    n = 40_000
    freqs = _freqs(tree, n, rng)
    assert _chi2(freqs, p / p.sum(), n) < 20.5  # 5 dof, p = 0.999
    assert freqs[2] > 0.65  # item 2 now dominates (10 / 14.25 = 0.70)
    np.testing.assert_allclose(tree.get([2, 5]), [10.0, 0.25])


def test_zero_priorities_never_sampled_and_boundaries():
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([0.0, 2.0, 0.0, 0.0, 3.0]))
    rng = np.random.default_rng(2)
    idx = tree.find_prefix_sum(rng.random(20_000) * tree.total)
    assert set(np.unique(idx)) == {1, 4}
    # Exact boundaries and values rounding up to the total stay on positive leaves.
    edges = np.array([0.0, 2.0, np.nextafter(5.0, 0), 5.0])
    np.testing.assert_array_equal(tree.find_prefix_sum(edges), [1, 4, 4, 4])


def test_duplicate_indices_and_errors():
    tree = SumTree(3)
    tree.set(np.array([0, 0, 1]), np.array([5.0, 1.0, 2.0]))  # the later duplicate wins
    assert tree.total == pytest.approx(3.0)
    assert SumTree(1).size == 1
    with pytest.raises(IndexError):
        tree.set(np.array([3]), np.array([1.0]))
    with pytest.raises(ValueError):
        tree.set(np.array([0]), np.array([-1.0]))


def test_random_batch_updates_keep_every_node_consistent():
    rng = np.random.default_rng(3)
    tree = SumTree(37)
    p = np.zeros(37)
    for _ in range(50):
        idx = rng.choice(37, size=rng.integers(1, 12), replace=False)
        p[idx] = rng.random(len(idx)) * (rng.random(len(idx)) > 0.2)
        tree.set(idx, p[idx])
        assert tree.total == pytest.approx(p.sum())
        assert tree.min == p.min()
        # Every inner node is the sum / min of its children.
        inner = np.arange(1, tree.size)
        np.testing.assert_allclose(
            tree._sum[inner], tree._sum[2 * inner] + tree._sum[2 * inner + 1]
        )
        np.testing.assert_array_equal(
            tree._min[inner], np.minimum(tree._min[2 * inner], tree._min[2 * inner + 1])
        )
