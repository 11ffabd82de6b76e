"""GAE, next-value construction and fragment concatenation against hand-computed values.

Arrays are time-major [T, N]. `gl` below is gamma * lambda.
"""

from __future__ import annotations

import numpy as np
import pytest

from scalerl.utils.advantages import compute_gae, next_values_for
from scalerl.utils.batch import concat_fragments

F32 = np.float32


def col(*xs: float) -> np.ndarray:
    """A [T, 1] float32 column."""
    return np.array(xs, dtype=F32)[:, None]


def flags(T: int, N: int = 1, at: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
    out = np.zeros((T, N), dtype=bool)
    for t, n in at:
        out[t, n] = True
    return out


def empty_index() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def test_plain_bootstrap_at_fragment_end():
    # gamma = 0.9, lambda = 0.8, gl = 0.72; no episode ends inside the fragment.
    rewards = col(1.0, 2.0, 3.0)
    values = col(0.5, 1.0, 1.5)
    bootstrap = np.array([2.0], dtype=F32)  # V of the observation after the fragment
    next_values = next_values_for(values, bootstrap, empty_index(), np.zeros(0, F32))
    np.testing.assert_allclose(next_values, col(1.0, 1.5, 2.0))

    # delta_0 = 1 + 0.9 * 1.0 - 0.5 = 1.4
    # delta_1 = 2 + 0.9 * 1.5 - 1.0 = 2.35
    # delta_2 = 3 + 0.9 * 2.0 - 1.5 = 3.3
    # A_2 = 3.3
    # A_1 = 2.35 + 0.72 * 3.3   = 4.726
    # A_0 = 1.4  + 0.72 * 4.726 = 4.80272
    adv, targets = compute_gae(
        rewards, values, next_values, flags(3), flags(3), gamma=0.9, lambda_=0.8
    )
    np.testing.assert_allclose(adv, col(4.80272, 4.726, 3.3), rtol=1e-6)
    # value targets = advantages + values
    np.testing.assert_allclose(targets, col(5.30272, 5.726, 4.8), rtol=1e-6)
    assert adv.shape == (3, 1) and targets.shape == (3, 1)


def test_termination_mid_fragment_no_bootstrap_and_recursion_cut():
    # gamma = 0.9, lambda = 0.8, gl = 0.72; the episode terminates at t = 1 and a new
    # one starts at t = 2 (values[2] is the value of the reset observation).
    rewards = col(1.0, 1.0, 1.0, 1.0)
    values = col(0.5, 0.6, 0.7, 0.8)
    bootstrap = np.array([0.9], dtype=F32)
    next_values = next_values_for(values, bootstrap, empty_index(), np.zeros(0, F32))
    terminateds = flags(4, at=((1, 0),))

    # delta_0 = 1 + 0.9 * 0.6 - 0.5 = 1.04
    # delta_1 = 1 + 0 (terminated: V(s_2) belongs to the next episode) - 0.6 = 0.4
    # delta_2 = 1 + 0.9 * 0.8 - 0.7 = 1.02
    # delta_3 = 1 + 0.9 * 0.9 - 0.8 = 1.01
    # A_3 = 1.01
    # A_2 = 1.02 + 0.72 * 1.01 = 1.7472
    # A_1 = 0.4                      (recursion cut: the next episode does not leak back)
    # A_0 = 1.04 + 0.72 * 0.4  = 1.328
    adv, targets = compute_gae(
        rewards, values, next_values, terminateds, flags(4), gamma=0.9, lambda_=0.8
    )
    np.testing.assert_allclose(adv, col(1.328, 0.4, 1.7472, 1.01), rtol=1e-6)
    np.testing.assert_allclose(targets, col(1.828, 1.0, 2.4472, 1.81), rtol=1e-6)


def test_truncation_mid_fragment_bootstraps_from_final_obs_and_cuts_recursion():
    # gamma = 0.5, lambda = 0.5, gl = 0.25. Two envs, T = 3.
    # env 0 is truncated at t = 1; the value of its final observation is 5.0.
    # env 1 runs through the whole fragment.
    rewards = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 1.0]], dtype=F32)
    values = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]], dtype=F32)
    bootstrap = np.array([4.0, 2.0], dtype=F32)
    trunc_index = np.array([[1, 0]], dtype=np.int64)
    trunc_values = np.array([5.0], dtype=F32)
    next_values = next_values_for(values, bootstrap, trunc_index, trunc_values)
    # env 0: [V(s_1), V(final obs of the truncated episode), bootstrap]; env 1: plain shift.
    np.testing.assert_allclose(next_values, [[2.0, 0.0], [5.0, 0.0], [4.0, 2.0]])
    truncateds = flags(3, 2, at=((1, 0),))

    # env 0:
    #   delta_0 = 1 + 0.5 * 2 - 1 = 1
    #   delta_1 = 1 + 0.5 * 5 - 2 = 1.5     (bootstraps from the final observation)
    #   delta_2 = 2 + 0.5 * 4 - 3 = 1
    #   A_2 = 1;  A_1 = 1.5 (cut; without the cut it would be 1.75);  A_0 = 1 + 0.25 * 1.5
    # env 1:
    #   deltas = [0, 0, 1 + 0.5 * 2 - 0 = 2];  A_2 = 2;  A_1 = 0.25 * 2;  A_0 = 0.25 * 0.5
    adv, targets = compute_gae(
        rewards, values, next_values, flags(3, 2), truncateds, gamma=0.5, lambda_=0.5
    )
    np.testing.assert_allclose(adv, [[1.375, 0.125], [1.5, 0.5], [1.0, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(targets, adv + values, rtol=1e-6)


def test_terminated_and_truncated_same_step_is_a_termination():
    # Gymnasium may report both; the return ends, so no bootstrap.
    rewards, values = col(1.0), col(0.25)
    next_values = col(10.0)
    both = flags(1, at=((0, 0),))
    adv, _ = compute_gae(rewards, values, next_values, both, both, gamma=0.9, lambda_=0.95)
    np.testing.assert_allclose(adv, col(1.0 - 0.25))


def _random_fragment(seed: int, T: int = 7, N: int = 3):
    """Random rewards/values with terminations and truncations; `next_values` built the way
    the learner builds them (shifted values, bootstrap, final-observation values)."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N)).astype(F32)
    values = rng.normal(size=(T, N)).astype(F32)
    terminateds = rng.random((T, N)) < 0.2
    truncateds = (rng.random((T, N)) < 0.2) & ~terminateds
    trunc_index = np.argwhere(truncateds).astype(np.int64)
    trunc_values = rng.normal(size=len(trunc_index)).astype(F32)
    bootstrap = rng.normal(size=N).astype(F32)
    next_values = next_values_for(values, bootstrap, trunc_index, trunc_values)
    return rewards, values, next_values, terminateds, truncateds


def _mc_advantages(rewards, values, next_values, terminateds, truncateds, gamma):
    """Discounted return to the end of the episode (or of the fragment), bootstrapped at a
    truncation or at the fragment end, minus V(s_t)."""
    T, N = rewards.shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            ret, discount = 0.0, 1.0
            for k in range(t, T):
                ret += discount * rewards[k, n]
                discount *= gamma
                if terminateds[k, n]:
                    break
                if truncateds[k, n] or k == T - 1:
                    ret += discount * next_values[k, n]
                    break
            out[t, n] = ret - values[t, n]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_one_is_monte_carlo_return_minus_value(seed):
    frag = _random_fragment(seed)
    assert frag[3][:-1].any() and frag[4][:-1].any()  # ends inside the fragment
    adv, targets = compute_gae(*frag, gamma=0.9, lambda_=1.0)
    expected = _mc_advantages(*frag, gamma=0.9)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, expected + frag[1], rtol=1e-5, atol=1e-5)


def test_lambda_one_hand_computed():
    # gamma = 0.5: A_0 = 1 + 0.5 * 2 + 0.25 * 4 + 0.125 * V_boot(8) - V_0(1) = 3 + 1 - 1 = 3
    rewards, values = col(1.0, 2.0, 4.0), col(1.0, 0.0, 0.0)
    next_values = col(0.0, 0.0, 8.0)
    adv, _ = compute_gae(rewards, values, next_values, flags(3), flags(3), 0.5, 1.0)
    # A_2 = 4 + 0.5 * 8 = 8;  A_1 = 2 + 0.5 * 4 + 0.25 * 8 = 6;  A_0 = 3 (above)
    np.testing.assert_allclose(adv, col(3.0, 6.0, 8.0), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_zero_is_one_step_td_error(seed):
    rewards, values, next_values, terminateds, truncateds = _random_fragment(seed)
    adv, targets = compute_gae(
        rewards, values, next_values, terminateds, truncateds, gamma=0.9, lambda_=0.0
    )
    td = rewards + 0.9 * next_values * (1.0 - terminateds) - values
    np.testing.assert_allclose(adv, td, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        targets, rewards + 0.9 * next_values * (1.0 - terminateds), rtol=1e-5, atol=1e-6
    )


def test_gamma_zero_advantage_is_reward_minus_value():
    rewards, values = col(1.0, 2.0), col(0.5, 0.25)
    adv, _ = compute_gae(rewards, values, col(9.0, 9.0), flags(2), flags(2), 0.0, 0.95)
    np.testing.assert_allclose(adv, col(0.5, 1.75))


def test_next_values_for_with_trunc_index():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=F32)
    values_before = values.copy()
    bootstrap = np.array([7.0, 8.0], dtype=F32)
    trunc_index = np.array([[0, 1], [2, 0]], dtype=np.int64)
    trunc_values = np.array([9.0, 10.0], dtype=F32)
    nv = next_values_for(values, bootstrap, trunc_index, trunc_values)
    # shift up by one step, bootstrap in the last row, then the truncation overrides:
    # (t=0, n=1) -> 9 (instead of values[1, 1] = 4); (t=2, n=0) -> 10 (instead of 7).
    np.testing.assert_array_equal(nv, [[3.0, 9.0], [5.0, 6.0], [10.0, 8.0]])
    np.testing.assert_array_equal(values, values_before)  # input untouched


def test_next_values_for_without_truncations():
    values = np.array([[1.0], [2.0]], dtype=F32)
    nv = next_values_for(values, np.array([3.0], F32), empty_index(), np.zeros(0, F32))
    np.testing.assert_array_equal(nv, [[2.0], [3.0]])


def _fragment(T: int, N: int, base: float, trunc_index: list[tuple[int, int]]) -> dict:
    obs = base + np.arange(T * N * 2, dtype=F32).reshape(T, N, 2)
    return {
        "obs": obs,
        "rewards": np.full((T, N), base, dtype=F32),
        "terminateds": np.zeros((T, N), dtype=bool),
        "bootstrap_obs": np.full((N, 2), base, dtype=F32),
        "trunc_index": np.array(trunc_index, dtype=np.int64).reshape(-1, 2),
        "trunc_obs": np.full((len(trunc_index), 2), base + 0.5, dtype=F32),
    }


def test_concat_fragments_offsets_trunc_index_env_columns():
    a = _fragment(T=3, N=1, base=0.0, trunc_index=[(1, 0)])
    b = _fragment(T=3, N=2, base=100.0, trunc_index=[])
    c = _fragment(T=3, N=3, base=200.0, trunc_index=[(0, 2), (2, 0)])
    out = concat_fragments([a, b, c])
    # env offsets: a -> 0, b -> 1, c -> 1 + 2 = 3; time indices unchanged.
    np.testing.assert_array_equal(out["trunc_index"], [[1, 0], [0, 5], [2, 3]])
    assert out["trunc_index"].shape == (3, 2)
    # trunc_obs rows stay aligned with trunc_index rows.
    np.testing.assert_array_equal(out["trunc_obs"][:, 0], [0.5, 200.5, 200.5])
    # [T, N] columns join along the env axis, per-env arrays along axis 0.
    assert out["obs"].shape == (3, 6, 2)
    np.testing.assert_array_equal(out["obs"][:, 1:3], b["obs"])
    np.testing.assert_array_equal(out["rewards"][0], [0, 100, 100, 200, 200, 200])
    assert out["bootstrap_obs"].shape == (6, 2)
    np.testing.assert_array_equal(out["bootstrap_obs"][:, 0], [0, 100, 100, 200, 200, 200])


def test_concat_fragments_trunc_index_feeds_next_values_for():
    # The env column of a truncation after concatenation must point at the same env's data.
    a = _fragment(T=2, N=2, base=0.0, trunc_index=[])
    b = _fragment(T=2, N=2, base=10.0, trunc_index=[(0, 1)])
    out = concat_fragments([a, b])
    np.testing.assert_array_equal(out["trunc_index"], [[0, 3]])
    values = out["rewards"]  # any [T, N] array: env n holds its fragment's `base`
    nv = next_values_for(values, np.zeros(4, F32), out["trunc_index"], np.array([-1.0], F32))
    assert nv[0, 3] == -1.0
    assert nv[0, 2] == 10.0 and nv[0, 1] == 0.0


def test_concat_fragments_all_empty_trunc_index():
    a = _fragment(T=2, N=1, base=0.0, trunc_index=[])
    b = _fragment(T=2, N=1, base=1.0, trunc_index=[])
    out = concat_fragments([a, b])
    assert out["trunc_index"].shape == (0, 2)
    assert out["trunc_obs"].shape == (0, 2)


def test_concat_single_fragment_is_unchanged():
    a = _fragment(T=2, N=2, base=0.0, trunc_index=[(1, 1)])
    out = concat_fragments([a])
    np.testing.assert_array_equal(out["trunc_index"], [[1, 1]])
    assert out["obs"].shape == (2, 2, 2)
