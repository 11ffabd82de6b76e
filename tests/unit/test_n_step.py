"""n-step transitions against hand-computed values: episode ends, truncation, fragment end."""

import numpy as np
import pytest

from scalerl.utils.replay_buffers import ReplayBuffer, n_step_transitions


def _fragment(nested: bool = False) -> dict:
    """T=4, N=2. Env 0 runs through; env 1 terminates at t=1, then a new episode is
    truncated at t=2 (true final obs 77) and a third one starts at t=3."""
    T, N = 4, 2
    obs = (10 * np.arange(N)[None, :] + np.arange(T)[:, None]).astype(np.float32)
    boot = np.array([100.0, 200.0], dtype=np.float32)
    trunc_obs = np.array([77.0], dtype=np.float32)
    if nested:
        obs, boot, trunc_obs = ({"a": x, "b": (2 * x,)} for x in (obs, boot, trunc_obs))
    terms = np.zeros((T, N), dtype=bool)
    truncs = np.zeros((T, N), dtype=bool)
    terms[1, 1] = True
    truncs[2, 1] = True
    return {
        "obs": obs,
        "actions": np.arange(T * N).reshape(T, N),
        "rewards": np.array([[1, 1], [2, 1], [3, 1], [4, 1]], dtype=np.float32),
        "terminateds": terms,
        "truncateds": truncs,
        "bootstrap_obs": boot,
        "trunc_index": np.array([[2, 1]]),
        "trunc_obs": trunc_obs,
    }


def _by_env(x: np.ndarray) -> np.ndarray:
    """[T * N] time-major -> [N, T] for reading against the per-env hand values."""
    return np.asarray(x).reshape(4, 2).T


def test_three_step_returns_at_ends_truncation_and_fragment_end():
    out = n_step_transitions(_fragment(), n=3, gamma=0.5)
    # Env 0: full 3 steps at t=0; then shortened by the fragment end, bootstrap obs 100.
    # Env 1: t=0 runs into the termination at t=1 (2 steps); t=1 is the terminal step;
    # t=2 is truncated after 1 step (bootstraps from 77); t=3 meets the fragment end.
    np.testing.assert_allclose(
        _by_env(out["rewards"]), [[2.75, 4.5, 5.0, 4.0], [1.5, 1.0, 1.0, 1.0]]
    )
    np.testing.assert_array_equal(_by_env(out["n_steps"]), [[3, 3, 2, 1], [2, 1, 1, 1]])
    np.testing.assert_allclose(
        _by_env(out["discounts"]), [[0.125, 0.125, 0.25, 0.5], [0.25, 0.5, 0.5, 0.5]]
    )
    np.testing.assert_array_equal(_by_env(out["terminateds"]), [[0, 0, 0, 0], [1, 1, 0, 0]])
    next_obs = _by_env(out["next_obs"])
    np.testing.assert_array_equal(next_obs[0], [3, 100, 100, 100])
    np.testing.assert_array_equal(next_obs[1, 2:], [77, 200])  # [:2] terminal: unused
    np.testing.assert_array_equal(_by_env(out["obs"]), _fragment()["obs"].T)
    np.testing.assert_array_equal(_by_env(out["actions"]), [[0, 2, 4, 6], [1, 3, 5, 7]])


def test_one_step_is_plain_transitions():
    out = n_step_transitions(_fragment(), n=1, gamma=0.9)
    frag = _fragment()
    np.testing.assert_allclose(out["rewards"], frag["rewards"].reshape(-1))
    np.testing.assert_allclose(out["discounts"], 0.9)
    np.testing.assert_array_equal(out["terminateds"], frag["terminateds"].reshape(-1))
    # next_obs = obs[t + 1], bootstrap obs on the last row, the true final obs at the cut.
    np.testing.assert_array_equal(_by_env(out["next_obs"]), [[1, 2, 3, 100], [11, 12, 77, 200]])


def test_nested_observations_follow_the_same_indices():
    out = n_step_transitions(_fragment(nested=True), n=3, gamma=0.5)
    np.testing.assert_array_equal(_by_env(out["next_obs"]["a"])[0], [3, 100, 100, 100])
    np.testing.assert_array_equal(_by_env(out["next_obs"]["b"][0])[1, 2:], [154, 400])
    assert set(out["obs"]) == {"a", "b"}
    buf = ReplayBuffer(capacity=16)  # the output is what the buffers store
    buf.add(out)
    s = buf.sample(32, np.random.default_rng(0))
    np.testing.assert_array_equal(s["obs"]["b"][0], 2 * s["obs"]["a"])


def test_n_larger_than_fragment_and_invalid_n():
    out = n_step_transitions(_fragment(), n=10, gamma=1.0)
    np.testing.assert_allclose(_by_env(out["rewards"])[0], [10, 9, 7, 4])
    with pytest.raises(ValueError, match="n_step"):
        n_step_transitions(_fragment(), n=0, gamma=0.9)
