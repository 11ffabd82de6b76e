"""ppo_loss on a fixed batch against hand-computed values, and the KL-coefficient rule."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.ppo.ppo_learner import PPOLearner, ppo_loss
from scalerl.core.distributions import Categorical, DiagGaussian
from scalerl.core.rl_module import Columns

CLIP = 0.2
# Six samples: probability ratios r = pi / pi_old and advantages A, chosen so that every
# case of the clipped surrogate min(r * A, clip(r, 0.8, 1.2) * A) appears:
#   0: r = 1.1 (inside),  A = +1 -> min(1.1, 1.1)          =  1.1
#   1: r = 1.5 (above),   A = +2 -> min(3.0, 1.2 * 2 = 2.4) =  2.4  (clipped)
#   2: r = 0.5 (below),   A = -1 -> min(-0.5, 0.8 * -1)     = -0.8  (clipped)
#   3: r = 1.5 (above),   A = -1 -> min(-1.5, 1.2 * -1)     = -1.5  (not clipped: pessimistic)
#   4: r = 0.5 (below),   A = +1 -> min(0.5, 0.8)           =  0.5  (not clipped: pessimistic)
#   5: r = 0.9 (inside),  A = -2 -> min(-1.8, -1.8)         = -1.8
RATIOS = [1.1, 1.5, 0.5, 1.5, 0.5, 0.9]
ADVANTAGES = [1.0, 2.0, -1.0, -1.0, 1.0, -2.0]
CLIPPED = [False, True, True, False, False, False]
# policy_loss = -mean(surrogate) = -(1.1 + 2.4 - 0.8 - 1.5 + 0.5 - 1.8) / 6 = 0.1 / 6
POLICY_LOSS = 0.1 / 6

# Value predictions and targets: squared errors [0.25, 4, 0, 16, 1, 0], mean 21.25 / 6.
# With vf_clip_param = 2 the squared errors clip to [0.25, 2, 0, 2, 1, 0], mean 5.25 / 6.
VF_PREDS = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0]
VALUE_TARGETS = [1.5, 0.0, 3.0, 4.0, -1.0, 0.0]
VF_LOSS = 21.25 / 6
VF_LOSS_CLIPPED = 5.25 / 6

# Categorical: the current policy has probabilities [0.25, 0.75] in every row, the old one
# [0.5, 0.5]. Actions alternate 0, 1.
CAT_ACTIONS = [0, 1, 0, 1, 0, 1]
CAT_PROBS_NEW = [0.25, 0.75]
CAT_PROBS_OLD = [0.5, 0.5]
CAT_ENTROPY = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.5623351
# KL(old || new) = 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75) = 0.5 ln(4 / 3) = 0.1438410
CAT_KL = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)

# DiagGaussian (1-D): current N(0, 1), old N(1, 2^2). Actions a_i.
GAUSS_ACTIONS = [0.0, 1.0, -1.0, 0.5, 2.0, -0.5]
GAUSS_ENTROPY = 0.5 * (1.0 + math.log(2 * math.pi))  # 1.4189385, for std = 1
# KL(N(1, 4) || N(0, 1)) = ln(1 / 2) + (4 + (1 - 0)^2) / (2 * 1) - 1/2 = 1.3068528
GAUSS_KL = math.log(1.0 / 2.0) + (4.0 + 1.0) / 2.0 - 0.5


def _t(xs) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float32)


def categorical_case(requires_grad: bool = False):
    n = len(RATIOS)
    new_inputs = _t([[math.log(p) for p in CAT_PROBS_NEW]] * n)
    old_inputs = _t([[math.log(p) for p in CAT_PROBS_OLD]] * n)
    logp_new = [math.log(CAT_PROBS_NEW[a]) for a in CAT_ACTIONS]
    # Stored behaviour logp chosen so that exp(logp_new - logp_old) = RATIOS.
    logp_old = [lp - math.log(r) for lp, r in zip(logp_new, RATIOS)]
    new_inputs.requires_grad_(requires_grad)
    batch = {
        Columns.ACTIONS: torch.tensor(CAT_ACTIONS),
        Columns.ACTION_LOGP: _t(logp_old),
        Columns.ACTION_DIST_INPUTS: old_inputs,
        Columns.ADVANTAGES: _t(ADVANTAGES),
        Columns.VALUE_TARGETS: _t(VALUE_TARGETS),
    }
    fwd_out = {Columns.ACTION_DIST_INPUTS: new_inputs, Columns.VF_PREDS: _t(VF_PREDS)}
    return Categorical, batch, fwd_out, CAT_ENTROPY, CAT_KL


def gaussian_case(requires_grad: bool = False):
    n = len(RATIOS)
    new_inputs = _t([[0.0, 0.0]] * n)  # mean 0, log_std 0
    old_inputs = _t([[1.0, math.log(2.0)]] * n)  # mean 1, log_std ln 2
    # log N(a; 0, 1) = -a^2 / 2 - ln(2 pi) / 2
    logp_new = [-0.5 * a * a - 0.5 * math.log(2 * math.pi) for a in GAUSS_ACTIONS]
    logp_old = [lp - math.log(r) for lp, r in zip(logp_new, RATIOS)]
    new_inputs.requires_grad_(requires_grad)
    batch = {
        Columns.ACTIONS: _t(GAUSS_ACTIONS)[:, None],
        Columns.ACTION_LOGP: _t(logp_old),
        Columns.ACTION_DIST_INPUTS: old_inputs,
        Columns.ADVANTAGES: _t(ADVANTAGES),
        Columns.VALUE_TARGETS: _t(VALUE_TARGETS),
    }
    fwd_out = {Columns.ACTION_DIST_INPUTS: new_inputs, Columns.VF_PREDS: _t(VF_PREDS)}
    return DiagGaussian, batch, fwd_out, GAUSS_ENTROPY, GAUSS_KL


CASES = {"categorical": categorical_case, "diag_gaussian": gaussian_case}


def run_loss(case, **overrides):
    dist_cls, batch, fwd_out, entropy, kl = CASES[case]()
    kwargs = dict(
        clip_param=CLIP,
        vf_clip_param=None,
        vf_loss_coeff=0.5,
        entropy_coeff=0.01,
        kl_coeff=0.2,
        use_kl_loss=False,
    )
    kwargs.update(overrides)
    total, stats = ppo_loss(dist_cls, batch, fwd_out, **kwargs)
    return total, {k: float(v) for k, v in stats.items()}, entropy, kl


@pytest.mark.parametrize("case", list(CASES))
def test_ratios_are_as_constructed(case):
    dist_cls, batch, fwd_out, _, _ = CASES[case]()
    pi = dist_cls(fwd_out[Columns.ACTION_DIST_INPUTS])
    ratio = torch.exp(pi.logp(batch[Columns.ACTIONS]) - batch[Columns.ACTION_LOGP])
    np.testing.assert_allclose(ratio.numpy(), RATIOS, rtol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_policy_loss_clipped_surrogate(case):
    _, stats, _, _ = run_loss(case)
    assert stats["policy_loss"] == pytest.approx(POLICY_LOSS, abs=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_vf_loss_without_clip(case):
    _, stats, _, _ = run_loss(case, vf_clip_param=None)
    assert stats["vf_loss"] == pytest.approx(VF_LOSS, rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_vf_loss_with_clip(case):
    _, stats, _, _ = run_loss(case, vf_clip_param=2.0)
    assert stats["vf_loss"] == pytest.approx(VF_LOSS_CLIPPED, rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_entropy_and_kl_values(case):
    _, stats, entropy, kl = run_loss(case)
    assert stats["entropy"] == pytest.approx(entropy, rel=1e-6)
    # The KL is reported even when the KL term is off.
    assert stats["mean_kl_loss"] == pytest.approx(kl, rel=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_total_without_kl_term(case):
    total, stats, entropy, _ = run_loss(case, vf_clip_param=None, use_kl_loss=False)
    expected = POLICY_LOSS + 0.5 * VF_LOSS - 0.01 * entropy
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert stats["total_loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_total_with_kl_term_and_vf_clip(case):
    total, stats, entropy, kl = run_loss(
        case, vf_clip_param=2.0, use_kl_loss=True, kl_coeff=0.3, entropy_coeff=0.05
    )
    expected = POLICY_LOSS + 0.5 * VF_LOSS_CLIPPED - 0.05 * entropy + 0.3 * kl
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert stats["total_loss"] == pytest.approx(expected, rel=1e-6)


def test_total_categorical_written_out():
    # 0.1/6 + 0.5 * 21.25/6 - 0.01 * 0.5623351 + 0.2 * 0.1438410
    #   = 0.0166667 + 1.7708333 - 0.0056234 + 0.0287682 = 1.8106448
    total, _, _, _ = run_loss("categorical", use_kl_loss=True)
    assert float(total) == pytest.approx(1.8106448, abs=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_clipped_samples_get_no_policy_gradient(case):
    dist_cls, batch, fwd_out, _, _ = CASES[case](requires_grad=True)
    total, _ = ppo_loss(
        dist_cls,
        batch,
        fwd_out,
        clip_param=CLIP,
        vf_clip_param=None,
        vf_loss_coeff=0.0,
        entropy_coeff=0.0,
        kl_coeff=0.0,
        use_kl_loss=False,
    )
    total.backward()
    grad = fwd_out[Columns.ACTION_DIST_INPUTS].grad
    row_norms = grad.abs().sum(dim=-1)
    for i, clipped in enumerate(CLIPPED):
        if clipped:
            assert row_norms[i] == 0.0, f"sample {i} is clipped but has a gradient"
        else:
            assert row_norms[i] > 0.0, f"sample {i} is not clipped but has no gradient"


def test_vf_clip_stops_value_gradient_of_clipped_samples():
    dist_cls, batch, fwd_out, _, _ = categorical_case()
    preds = fwd_out[Columns.VF_PREDS].clone().requires_grad_(True)
    fwd_out[Columns.VF_PREDS] = preds
    total, _ = ppo_loss(
        dist_cls,
        batch,
        fwd_out,
        clip_param=CLIP,
        vf_clip_param=2.0,
        vf_loss_coeff=1.0,
        entropy_coeff=0.0,
        kl_coeff=0.0,
        use_kl_loss=False,
    )
    total.backward()
    # d/dp mean((p - y)^2) = 2 (p - y) / 6 where not clipped; squared errors 4 and 16 are clipped.
    expected = [2 * (p - y) / 6 for p, y in zip(VF_PREDS, VALUE_TARGETS)]
    expected[1] = expected[3] = 0.0
    np.testing.assert_allclose(preds.grad.numpy(), expected, rtol=1e-6, atol=1e-7)


# -- KL-coefficient adaptation ------------------------------------------------------------


def make_learner(kl_coeff: float = 0.2, kl_target: float = 0.01) -> PPOLearner:
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(kl_coeff=kl_coeff, kl_target=kl_target, use_kl_loss=True)
        .debugging(seed=0)
    )
    spec = config.get_rl_module_spec(
        gym.spaces.Box(-1.0, 1.0, (4,), np.float32), gym.spaces.Discrete(2)
    )
    return PPOLearner(config, spec)


@pytest.mark.parametrize(
    "mean_kl, expected",
    [
        (0.03, 0.2 * 1.5),  # > 2 * target (0.02): raise by 1.5x
        (0.0201, 0.2 * 1.5),
        (0.02, 0.2),  # exactly 2 * target: unchanged
        (0.01, 0.2),  # on target: unchanged
        (0.005, 0.2),  # exactly 0.5 * target: unchanged
        (0.0049, 0.2 * 0.5),  # < 0.5 * target: halve
        (0.0, 0.2 * 0.5),
    ],
)
def test_adapt_kl_coeff_rule(mean_kl, expected):
    learner = make_learner(kl_coeff=0.2, kl_target=0.01)
    learner._adapt_kl_coeff(mean_kl)
    assert learner.kl_coeff == pytest.approx(expected, rel=1e-12)


def test_adapt_kl_coeff_compounds_and_is_checkpointed_state():
    learner = make_learner(kl_coeff=0.2, kl_target=0.01)
    learner._adapt_kl_coeff(1.0)
    learner._adapt_kl_coeff(1.0)
    assert learner.kl_coeff == pytest.approx(0.2 * 1.5 * 1.5)
    learner._adapt_kl_coeff(0.0)
    assert learner.kl_coeff == pytest.approx(0.2 * 1.5 * 1.5 * 0.5)
    state = learner.get_extra_state()
    other = make_learner(kl_coeff=0.2, kl_target=0.01)
    other.set_extra_state(state)
    assert other.kl_coeff == learner.kl_coeff


def _fragment(T: int = 16, N: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(T, N, 4)).astype(np.float32)
    dist_inputs = rng.normal(size=(T, N, 2)).astype(np.float32)
    actions = rng.integers(0, 2, size=(T, N))
    logp = torch.log_softmax(torch.from_numpy(dist_inputs), -1).gather(
        -1, torch.from_numpy(actions)[..., None]
    )[..., 0]
    return {
        Columns.OBS: obs,
        Columns.ACTIONS: actions,
        Columns.REWARDS: rng.normal(size=(T, N)).astype(np.float32),
        Columns.TERMINATEDS: np.zeros((T, N), dtype=bool),
        Columns.TRUNCATEDS: np.zeros((T, N), dtype=bool),
        Columns.ACTION_LOGP: logp.numpy(),
        Columns.ACTION_DIST_INPUTS: dist_inputs,
        "bootstrap_obs": rng.normal(size=(N, 4)).astype(np.float32),
        "trunc_index": np.zeros((0, 2), dtype=np.int64),
        "trunc_obs": np.zeros((0, 4), dtype=np.float32),
    }


def test_update_applies_kl_rule_to_mean_kl():
    # A tiny target makes any measured KL overshoot it: beta must rise by exactly 1.5x.
    learner = make_learner(kl_coeff=0.2, kl_target=1e-12)
    learner.config.minibatch_size = 16
    learner.config.num_epochs = 1
    metrics = learner.update(_fragment(), timestep=0)
    assert metrics["mean_kl_loss"] > 2e-12
    assert learner.kl_coeff == pytest.approx(0.3)
    assert metrics["curr_kl_coeff"] == pytest.approx(0.3)
