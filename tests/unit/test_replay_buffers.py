"""ReplayBuffer and PrioritizedReplayBuffer: ring storage, nesting, state, priorities."""

import json

import numpy as np
import pytest

from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer


def _batch(start: int, B: int) -> dict:
    ids = np.arange(start, start + B)
    return {
        "obs": {"pos": ids[:, None].repeat(3, 1).astype(np.float32), "flag": ids % 2 == 0},
        "actions": (ids.astype(np.int64), ids.astype(np.float32) * 0.5),
        "rewards": ids.astype(np.float32),
        "next_obs": {
            "pos": (ids + 1)[:, None].repeat(3, 1).astype(np.float32),
            "flag": ids % 2 == 1,
        },
        "terminateds": np.zeros(B, dtype=np.float32),
    }


def test_ring_buffer_nested_columns_and_nbytes():
    buf = ReplayBuffer(capacity=10)
    assert len(buf) == 0 and buf.nbytes == 0
    buf.add(_batch(0, 4))
    buf.add(_batch(4, 8))  # wraps: slots 8, 9, 0, 1 overwrite ids 0, 1
    assert len(buf) == 10
    # Per transition: obs 12 + 1, actions 8 + 4, reward 4, next_obs 13, terminated 4 = 46.
    assert buf.nbytes == 10 * 46
    s = buf.sample(64, np.random.default_rng(0))
    ids = s["rewards"].astype(np.int64)
    assert ids.min() >= 2 and ids.max() <= 11  # the 10 newest survive
    np.testing.assert_array_equal(s["obs"]["pos"][:, 0], ids)
    np.testing.assert_array_equal(s["obs"]["flag"], ids % 2 == 0)
    np.testing.assert_array_equal(s["actions"][0], ids)
    np.testing.assert_array_equal(s["actions"][1], ids * 0.5)
    np.testing.assert_array_equal(s["next_obs"]["pos"][:, 2], ids + 1)
    assert s["indices"].shape == (64,)
    # A batch larger than the capacity keeps its newest rows.
    buf.add(_batch(100, 25))
    assert set(buf.sample(200, np.random.default_rng(1))["rewards"]) == set(range(115, 125))


def test_uniform_sampling_covers_buffer():
    buf = ReplayBuffer(capacity=50)
    buf.add(_batch(0, 20))
    counts = np.bincount(buf.sample(20_000, np.random.default_rng(0))["indices"], minlength=20)
    assert counts.min() > 800 and counts.max() < 1200  # expected 1000 each


def test_state_roundtrip_is_plain_arrays_and_json():
    buf = PrioritizedReplayBuffer(capacity=8, alpha=0.7, beta=0.5)
    buf.add(_batch(0, 6))
    buf.update_priorities(np.array([1, 3]), np.array([4.0, -0.5]))
    arrays, meta = buf.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    json.dumps(meta)
    other = PrioritizedReplayBuffer(capacity=8)
    other.set_state(arrays, meta)
    assert len(other) == 6 and other.alpha == 0.7 and other.max_priority == buf.max_priority
    a = buf.sample(32, np.random.default_rng(3))
    b = other.sample(32, np.random.default_rng(3))
    np.testing.assert_array_equal(a["indices"], b["indices"])
    np.testing.assert_array_equal(a["obs"]["pos"], b["obs"]["pos"])
    np.testing.assert_array_equal(a["actions"][1], b["actions"][1])
    np.testing.assert_allclose(a["weights"], b["weights"])
    other.add(_batch(6, 3))  # continues the ring where the original stopped
    assert len(other) == 8 and other._next == 1
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=4).set_state(arrays, meta)


def test_prioritized_proportions_weights_and_updates():
    alpha, beta, eps = 0.5, 0.4, 1e-6
    buf = PrioritizedReplayBuffer(capacity=4, alpha=alpha, beta=beta, eps=eps)
    buf.add(_batch(0, 4))
    rng = np.random.default_rng(0)
    # New items share the max priority: uniform, all weights 1.
    s = buf.sample(256, rng)
    np.testing.assert_allclose(s["weights"], 1.0)
    td = np.array([1.0, 4.0, 9.0, 0.0])
    buf.update_priorities(np.arange(4), td)
    p = (np.abs(td) + eps) ** alpha
    probs = p / p.sum()
    s = buf.sample(40_000, rng)
    freqs = np.bincount(s["indices"], minlength=4) / 40_000
    np.testing.assert_allclose(freqs, probs, atol=0.01)
    expected_w = (4 * probs) ** -beta / (4 * probs.min()) ** -beta
    np.testing.assert_allclose(s["weights"], expected_w[s["indices"]], rtol=1e-5)
    # beta passed to sample overrides; beta = 0 means no correction.
    np.testing.assert_allclose(buf.sample(16, rng, beta=0.0)["weights"], 1.0)
    # A new item gets the max priority seen (9 + eps), not 1.
    buf.add(_batch(4, 1))  # overwrites slot 0
    assert buf.tree.get([0])[0] == pytest.approx((9.0 + eps) ** alpha)


def test_errors_name_the_setting():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4).sample(1, np.random.default_rng(0))
    buf = ReplayBuffer(4)
    buf.add(_batch(0, 2))
    with pytest.raises(KeyError, match="columns"):
        buf.add({"obs": np.zeros((2, 1))})
