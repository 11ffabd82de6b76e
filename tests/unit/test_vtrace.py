"""V-trace against a direct implementation of the paper's definition, GAE, and by hand.

Arrays are time-major [T, N]; `next_values` is built the way the learner builds it for GAE
(`next_values_for`: shifted values, bootstrap, final-observation values at truncations).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalerl.utils.advantages import compute_gae, next_values_for
from scalerl.utils.errors import ConfigError
from scalerl.utils.sequences import SequenceLayout
from scalerl.utils.vtrace import vtrace, vtrace_torch

F64 = np.float64


def col(*xs: float) -> np.ndarray:
    """A [T, 1] float64 column."""
    return np.array(xs, dtype=F64)[:, None]


def flags(T: int, N: int = 1, at: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
    out = np.zeros((T, N), dtype=bool)
    for t, n in at:
        out[t, n] = True
    return out


def paper_vtrace(
    blogp, tlogp, rewards, values, next_values, term, trunc, gamma, rho_bar, pg_bar, c_bar, lam
):
    """Espeholt et al. 2018, eq. (1), element by element: for each s, the n-step sum to the
    end of s's episode inside the fragment (its done step, or the fragment's last step),

        v_s = V(x_s) + sum_{t=s}^{s+n-1} gamma^{t-s} (prod_{i=s}^{t-1} c_i) delta_t V,
        delta_t V = rho_t (r_t + gamma V(x_{t+1}) - V(x_t)),

    with V(x_{t+1}) = next_values[t] (0 after a termination), and
    pg_adv_s = rho^pg_s (r_s + gamma v_{s+1} - V(x_s)), v_{s+1} = V of a bootstrap or final
    observation at the fragment end or after a truncation."""
    T, N = rewards.shape
    ratio = np.exp(tlogp.astype(F64) - blogp.astype(F64))
    rho = ratio if rho_bar is None else np.minimum(rho_bar, ratio)
    c = lam * (ratio if c_bar is None else np.minimum(c_bar, ratio))
    pg_rho = ratio if pg_bar is None else np.minimum(pg_bar, ratio)
    done = term | trunc

    def v_target(s: int, n: int) -> float:
        last = s
        while not done[last, n] and last < T - 1:
            last += 1
        total = float(values[s, n])
        for t in range(s, last + 1):
            weight = gamma ** (t - s) * np.prod(c[s:t, n])
            v_next = 0.0 if term[t, n] else next_values[t, n]
            total += weight * rho[t, n] * (rewards[t, n] + gamma * v_next - values[t, n])
        return total

    vs, pg = np.zeros((T, N)), np.zeros((T, N))
    for n in range(N):
        for s in range(T):
            vs[s, n] = v_target(s, n)
            inside = s < T - 1 and not done[s, n]
            v_next = v_target(s + 1, n) if inside else next_values[s, n]
            v_next = 0.0 if term[s, n] else v_next
            pg[s, n] = pg_rho[s, n] * (rewards[s, n] + gamma * v_next - values[s, n])
    return vs, pg


def random_fragment(seed: int, T: int = 9, N: int = 4, dtype=F64) -> dict:
    """Random data with terminations and truncations inside the fragment and importance
    ratios on both sides of 1."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(T, N)).astype(dtype)
    terminateds = rng.random((T, N)) < 0.15
    truncateds = (rng.random((T, N)) < 0.15) & ~terminateds
    trunc_index = np.argwhere(truncateds).astype(np.int64)
    trunc_values = rng.normal(size=len(trunc_index)).astype(dtype)
    bootstrap = rng.normal(size=N).astype(dtype)
    behaviour_logp = (rng.normal(size=(T, N)) - 1.0).astype(dtype)
    return {
        "behaviour_logp": behaviour_logp,
        "target_logp": (behaviour_logp + rng.normal(scale=0.8, size=(T, N))).astype(dtype),
        "rewards": rng.normal(size=(T, N)).astype(dtype),
        "values": values,
        "next_values": next_values_for(values, bootstrap, trunc_index, trunc_values),
        "terminateds": terminateds,
        "truncateds": truncateds,
    }


def on_policy(frag: dict) -> dict:
    return {**frag, "target_logp": frag["behaviour_logp"].copy()}


def as_tensors(frag: dict) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in frag.items()}


THRESHOLDS = [
    dict(clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0, clip_c_threshold=1.0, lambda_=1.0),
    dict(clip_rho_threshold=2.0, clip_pg_rho_threshold=1.5, clip_c_threshold=0.8, lambda_=1.0),
    dict(clip_rho_threshold=None, clip_pg_rho_threshold=None, clip_c_threshold=None, lambda_=1.0),
    dict(clip_rho_threshold=1.0, clip_pg_rho_threshold=0.7, clip_c_threshold=1.0, lambda_=0.9),
]


def reference(frag: dict, gamma: float, kw: dict):
    return paper_vtrace(
        *(frag[k] for k in ("behaviour_logp", "target_logp", "rewards", "values", "next_values")),
        frag["terminateds"],
        frag["truncateds"],
        gamma,
        kw["clip_rho_threshold"],
        kw["clip_pg_rho_threshold"],
        kw["clip_c_threshold"],
        kw["lambda_"],
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("kw", THRESHOLDS)
def test_matches_the_papers_definition(seed, kw):
    frag = random_fragment(seed)
    done = frag["terminateds"] | frag["truncateds"]
    assert frag["terminateds"][:-1].any() and frag["truncateds"][:-1].any()
    assert not done[-1].all()  # some columns continue past the fragment end (bootstrap)
    ratio = np.exp(frag["target_logp"] - frag["behaviour_logp"])
    assert (ratio > 2.0).any() and (ratio < 0.7).any()  # every threshold clips somewhere
    vs, pg = vtrace(**frag, gamma=0.9, **kw)
    vs_ref, pg_ref = reference(frag, 0.9, kw)
    np.testing.assert_allclose(vs, vs_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pg, pg_ref, rtol=1e-10, atol=1e-10)
    assert vs.dtype == F64 and pg.dtype == F64


@pytest.mark.parametrize("seed", [0, 1])
def test_torch_float32_matches_the_papers_definition(seed):
    frag = random_fragment(seed, T=20, N=6, dtype=np.float32)
    kw = THRESHOLDS[1]
    vs, pg = vtrace_torch(**as_tensors(frag), gamma=0.95, **kw)
    assert vs.dtype == torch.float32 and vs.shape == (20, 6)
    vs_ref, pg_ref = reference(frag, 0.95, kw)
    np.testing.assert_allclose(vs.numpy(), vs_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pg.numpy(), pg_ref, rtol=1e-4, atol=1e-4)


def test_hand_computed_truncation_bootstrap_and_clipping():
    # gamma = 0.5; importance ratios pi/mu = [2, 0.5, 1, 4]; truncated at t = 1 (final
    # observation's value 10), the next episode runs past the fragment end (bootstrap 8).
    ratios = np.array([2.0, 0.5, 1.0, 4.0])
    frag = {
        "behaviour_logp": col(0.0, 0.0, 0.0, 0.0),
        "target_logp": np.log(ratios)[:, None],
        "rewards": col(1.0, 2.0, 3.0, 4.0),
        "values": col(1.0, 2.0, 3.0, 4.0),
        "next_values": col(2.0, 10.0, 4.0, 8.0),
        "terminateds": flags(4),
        "truncateds": flags(4, at=((1, 0),)),
    }
    # Thresholds 1: rho = c = rho_pg = [1, 0.5, 1, 1].
    #   delta = [1 * (1 + 0.5*2 - 1), 0.5 * (2 + 0.5*10 - 2),
    #            1 * (3 + 0.5*4 - 3), 1 * (4 + 0.5*8 - 4)] = [1, 2.5, 2, 4]
    #   v - V: [3] 4; [2] 2 + 0.5*4 = 4; [1] 2.5 (trace cut at the truncation); [0] 1 + 0.5*2.5
    vs, pg = vtrace(**frag, gamma=0.5)
    np.testing.assert_allclose(vs, col(3.25, 4.5, 7.0, 8.0))
    # pg: [0] 1 * (1 + 0.5 * v_1 (4.5) - 1); [1] 0.5 * (2 + 0.5 * 10 - 2) (the final obs);
    #     [2] 3 + 0.5 * v_3 (8) - 3; [3] 4 + 0.5 * 8 (bootstrap) - 4
    np.testing.assert_allclose(pg, col(2.25, 2.5, 4.0, 4.0))

    # No clipping: rho = c = rho_pg = [2, 0.5, 1, 4].
    #   delta = [2, 2.5, 2, 16];  coeffs gamma * c = [1, cut, 0.5, 2]
    #   v - V: [3] 16; [2] 2 + 0.5*16 = 10; [1] 2.5; [0] 2 + 1 * 2.5 = 4.5
    vs, pg = vtrace(
        **frag,
        gamma=0.5,
        clip_rho_threshold=None,
        clip_pg_rho_threshold=None,
        clip_c_threshold=None,
    )
    np.testing.assert_allclose(vs, col(5.5, 4.5, 13.0, 20.0))
    # pg: [0] 2 * (0.5 * 4.5); [1] 0.5 * 5; [2] 1 * (0.5 * 20); [3] 4 * (0.5 * 8)
    np.testing.assert_allclose(pg, col(4.5, 2.5, 10.0, 16.0))


def test_termination_ignores_next_value_and_stops_the_trace():
    # gamma = 0.9, on-policy; terminated at t = 1: next_values[1] (99) must not be used.
    frag = {
        "behaviour_logp": col(-1.0, -1.0, -1.0),
        "target_logp": col(-1.0, -1.0, -1.0),
        "rewards": col(1.0, 2.0, 3.0),
        "values": col(0.5, 0.25, 2.0),
        "next_values": col(0.25, 99.0, 4.0),
        "terminateds": flags(3, at=((1, 0),)),
        "truncateds": flags(3),
    }
    vs, pg = vtrace(**frag, gamma=0.9)
    # v_2 = 3 + 0.9 * 4 = 6.6;  v_1 = 2 (episode ends);  v_0 = 1 + 0.9 * 2 = 2.8
    np.testing.assert_allclose(vs, col(2.8, 2.0, 6.6))
    np.testing.assert_allclose(pg, col(2.8 - 0.5, 2.0 - 0.25, 6.6 - 2.0))


@pytest.mark.parametrize("boundary", ["terminateds", "truncateds"])
def test_nothing_after_an_episode_end_leaks_back(boundary):
    frag = random_fragment(7, T=8, N=1)
    frag["terminateds"][:] = False
    frag["truncateds"][:] = False
    frag[boundary][3, 0] = True
    # next_values: values[t + 1] inside the episodes, a final observation value 5 at t = 3
    frag["next_values"] = next_values_for(frag["values"], np.ones(1), np.array([[3, 0]]), [5.0])
    vs, pg = vtrace(**frag, gamma=0.99, clip_rho_threshold=None, clip_c_threshold=None)
    changed = {k: v.copy() for k, v in frag.items()}
    for k in ("rewards", "values", "behaviour_logp", "target_logp"):
        changed[k][4:] += 3.0  # everything of the next episode
    changed["next_values"][4:] += 3.0
    vs2, pg2 = vtrace(**changed, gamma=0.99, clip_rho_threshold=None, clip_c_threshold=None)
    np.testing.assert_allclose(vs2[:4], vs[:4], rtol=1e-12)
    np.testing.assert_allclose(pg2[:4], pg[:4], rtol=1e-12)
    assert not np.allclose(vs2[4:], vs[4:])


def discounted_returns(frag: dict, gamma: float) -> np.ndarray:
    """Discounted rewards to the episode's end, plus gamma^k times the final observation's
    value at a truncation or the bootstrap value at the fragment end."""
    T, N = frag["rewards"].shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            ret, discount = 0.0, 1.0
            for k in range(t, T):
                ret += discount * frag["rewards"][k, n]
                discount *= gamma
                if frag["terminateds"][k, n]:
                    break
                if frag["truncateds"][k, n] or k == T - 1:
                    ret += discount * frag["next_values"][k, n]
                    break
            out[t, n] = ret
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_policy_lambda_one_is_the_discounted_return_and_gae(seed):
    frag = on_policy(random_fragment(seed))
    vs, pg = vtrace(**frag, gamma=0.9)
    returns = discounted_returns(frag, 0.9)
    np.testing.assert_allclose(vs, returns, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pg, returns - frag["values"], rtol=1e-10, atol=1e-10)
    gae_args = [frag[k] for k in ("rewards", "values", "next_values", "terminateds", "truncateds")]
    adv, targets = compute_gae(*gae_args, gamma=0.9, lambda_=1.0)
    # compute_gae accumulates in float32
    np.testing.assert_allclose(vs, targets, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pg, adv, rtol=1e-5, atol=1e-5)


def test_on_policy_with_lambda_gives_gae_lambda_targets():
    frag = on_policy(random_fragment(3))
    gae_args = [frag[k] for k in ("rewards", "values", "next_values", "terminateds", "truncateds")]
    adv, targets = compute_gae(*gae_args, gamma=0.9, lambda_=0.8)
    vs, pg = vtrace(**frag, gamma=0.9, lambda_=0.8)
    np.testing.assert_allclose(vs, targets, rtol=1e-5, atol=1e-5)  # GAE is float32
    # pg: r_t + gamma * v_{t+1} - V(x_t) = delta_t + gamma * A^GAE_{t+1} inside an episode.
    not_term = ~frag["terminateds"]
    delta = frag["rewards"] + 0.9 * not_term * frag["next_values"] - frag["values"]
    inside = ~(frag["terminateds"] | frag["truncateds"])
    inside[-1] = False
    expected = delta.copy()
    expected[:-1] += 0.9 * inside[:-1] * adv[1:]
    np.testing.assert_allclose(pg, expected, rtol=1e-5, atol=1e-5)


def test_ratios_above_one_are_clipped_to_on_policy():
    frag = random_fragment(4)
    frag["target_logp"] = frag["behaviour_logp"] + 0.5  # pi/mu = e^0.5 ~ 1.65 everywhere
    vs, pg = vtrace(**frag, gamma=0.9)  # all thresholds 1
    vs_on, pg_on = vtrace(**on_policy(frag), gamma=0.9)
    np.testing.assert_allclose(vs, vs_on, rtol=1e-12)
    np.testing.assert_allclose(pg, pg_on, rtol=1e-12)
    # clip_pg_rho_threshold alone scales the advantages, not the targets.
    vs_pg, pg_pg = vtrace(**frag, gamma=0.9, clip_pg_rho_threshold=1.2)
    np.testing.assert_allclose(vs_pg, vs_on, rtol=1e-12)
    np.testing.assert_allclose(pg_pg, 1.2 * pg_on, rtol=1e-12)
    # Unclipped, the ratio counts: the targets differ.
    vs_raw, pg_raw = vtrace(**frag, gamma=0.9, clip_rho_threshold=None, clip_pg_rho_threshold=None)
    assert not np.allclose(vs_raw, vs_on)
    assert not np.allclose(pg_raw, pg_on)
    # Only c clipped (rho free) differs from both.
    vs_c, _ = vtrace(**frag, gamma=0.9, clip_rho_threshold=None, clip_c_threshold=None)
    assert not np.allclose(vs_c, vs_raw) and not np.allclose(vs_c, vs_on)


def test_ratios_below_the_thresholds_are_not_clipped():
    frag = random_fragment(5)
    frag["target_logp"] = frag["behaviour_logp"] - np.abs(
        frag["target_logp"] - frag["behaviour_logp"]
    )
    clipped = vtrace(**frag, gamma=0.9)
    free = vtrace(
        **frag,
        gamma=0.9,
        clip_rho_threshold=None,
        clip_pg_rho_threshold=None,
        clip_c_threshold=None,
    )
    for a, b in zip(clipped, free):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert not np.allclose(clipped[0], vtrace(**on_policy(frag), gamma=0.9)[0])


def test_huge_ratios_do_not_overflow():
    frag = random_fragment(6, dtype=np.float32)
    frag["target_logp"] = frag["behaviour_logp"] + 500.0
    with np.errstate(over="raise"):
        vs, pg = vtrace(**frag, gamma=0.9)
    assert vs.dtype == np.float32 and pg.dtype == np.float32  # no promotion to float64
    np.testing.assert_allclose(vs, vtrace(**on_policy(frag), gamma=0.9)[0], rtol=1e-5)
    assert np.isfinite(pg).all()
    vs_t, _ = vtrace_torch(**as_tensors(frag), gamma=0.9)
    assert torch.isfinite(vs_t).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kw", THRESHOLDS)
def test_torch_and_numpy_agree(seed, kw):
    frag = random_fragment(seed, T=16, N=5)
    vs, pg = vtrace(**frag, gamma=0.97, **kw)
    vs_t, pg_t = vtrace_torch(**as_tensors(frag), gamma=0.97, **kw)
    assert vs_t.dtype == torch.float64
    np.testing.assert_allclose(vs_t.numpy(), vs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pg_t.numpy(), pg, rtol=1e-12, atol=1e-12)


def test_no_gradient_flows_into_the_targets():
    frag = as_tensors(random_fragment(0, dtype=np.float32))
    values = frag["values"].clone().requires_grad_(True)
    target_logp = frag["target_logp"].clone().requires_grad_(True)
    next_values = frag["next_values"].clone().requires_grad_(True)
    vs, pg = vtrace_torch(
        **{**frag, "values": values, "target_logp": target_logp, "next_values": next_values},
        gamma=0.9,
    )
    assert not vs.requires_grad and not pg.requires_grad
    assert vs.grad_fn is None and pg.grad_fn is None
    # A learner's losses: gradients only through the direct use of values and log pi.
    vf_loss = 0.5 * ((values - vs) ** 2).sum()
    pg_loss = -(target_logp * pg).sum()
    (vf_loss + pg_loss).backward()
    torch.testing.assert_close(values.grad, (values - vs).detach())
    torch.testing.assert_close(target_logp.grad, -pg)
    assert next_values.grad is None


def test_inputs_are_not_modified():
    frag = random_fragment(1)
    before = {k: v.copy() for k, v in frag.items()}
    vtrace(**frag, gamma=0.9)
    vtrace_torch(**as_tensors(frag), gamma=0.9)
    for k, v in frag.items():
        np.testing.assert_array_equal(v, before[k])


def test_concatenated_fragments_give_each_fragments_result():
    # Fragments of several runners (sequences continuing past their fragment end) joined
    # along the env axis: each column keeps its own trace and bootstrap.
    a, b = random_fragment(10, T=6, N=2), random_fragment(11, T=6, N=3)
    joined = {k: np.concatenate([a[k], b[k]], axis=1) for k in a}
    vs, pg = vtrace(**joined, gamma=0.9, clip_rho_threshold=None)
    for part, cols in ((a, slice(0, 2)), (b, slice(2, 5))):
        vs_part, pg_part = vtrace(**part, gamma=0.9, clip_rho_threshold=None)
        np.testing.assert_allclose(vs[:, cols], vs_part, rtol=1e-12)
        np.testing.assert_allclose(pg[:, cols], pg_part, rtol=1e-12)


def test_a_single_step_and_a_flat_time_axis():
    vs, pg = vtrace(
        col(0.0), col(np.log(3.0)), col(1.0), col(0.5), col(2.0), flags(1), flags(1), 0.5
    )
    # rho = 1 (clipped): v = 0.5 + (1 + 0.5 * 2 - 0.5) = 2
    np.testing.assert_allclose(vs, col(2.0))
    np.testing.assert_allclose(pg, col(1.5))
    frag = random_fragment(2, N=1)
    flat = {k: v[:, 0] for k, v in frag.items()}
    np.testing.assert_allclose(vtrace(**flat, gamma=0.9)[0], vtrace(**frag, gamma=0.9)[0][:, 0])


def test_bad_inputs_raise_clear_errors():
    frag = random_fragment(0)
    with pytest.raises(ValueError, match="`values` has shape"):
        vtrace(**{**frag, "values": frag["values"][:-1]}, gamma=0.9)
    with pytest.raises(ConfigError, match="clip_rho_threshold"):
        vtrace(**frag, gamma=0.9, clip_rho_threshold=0.0)
    with pytest.raises(ConfigError, match="clip_c_threshold"):
        vtrace_torch(**as_tensors(frag), gamma=0.9, clip_c_threshold=-1.0)
    with pytest.raises(ConfigError, match="lambda_"):
        vtrace(**frag, gamma=0.9, lambda_=1.5)


def test_recurrent_sequences_scattered_back_to_the_fragment():
    # A recurrent loss sees padded sequences [S, L]; sequence starts inside an episode
    # (max_seq_len) must not cut the trace: scatter log pi back to [T, N], then V-trace.
    frag = random_fragment(8, T=8, N=2)
    frag["terminateds"][:] = False
    frag["truncateds"][:] = False
    frag["terminateds"][5, 1] = True
    bootstrap = frag["next_values"][-1]
    frag["next_values"] = next_values_for(frag["values"], bootstrap, np.zeros((0, 2), int), [])
    # column 0: sequences of max_seq_len 3 from t = 0, 3, 6; column 1: 0, 3, 6 (episode start)
    seq_index = np.array([[0, 0], [3, 0], [6, 0], [0, 1], [3, 1], [6, 1]], dtype=np.int64)
    layout = SequenceLayout.from_starts(seq_index, T=8)
    target_seq = layout.gather(frag["target_logp"])  # what the loss's forward pass gives
    assert target_seq.shape == (6, 3)
    scattered = layout.scatter(target_seq, T=8, N=2)
    vs, pg = vtrace(**{**frag, "target_logp": scattered}, gamma=0.9, clip_rho_threshold=None)
    vs_ref, pg_ref = reference(frag, 0.9, {**THRESHOLDS[0], "clip_rho_threshold": None})
    np.testing.assert_allclose(vs, vs_ref, rtol=1e-10)
    np.testing.assert_allclose(pg, pg_ref, rtol=1e-10)
    # Cutting the trace at the sequence starts would give other targets.
    cut = {**frag, "truncateds": frag["truncateds"].copy()}
    cut["truncateds"][[2, 5], 0] = True
    assert not np.allclose(vtrace(**cut, gamma=0.9, clip_rho_threshold=None)[0][:, 0], vs[:, 0])
