"""Categorical and DiagGaussian against torch.distributions reference values (the other
action distributions: test_action_distributions.py)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import distributions as td

from scalerl.core.distributions import Categorical, DiagGaussian, dist_class_for


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.fixture
def logits() -> torch.Tensor:
    # Unnormalized logits (offsets differ per row) for 5 rows x 4 actions.
    return torch.randn(5, 4, generator=_gen(0)) * 2.0 + torch.arange(5.0)[:, None]


@pytest.fixture
def gauss_inputs() -> torch.Tensor:
    g = _gen(1)
    mean = torch.randn(5, 3, generator=g)
    log_std = torch.randn(5, 3, generator=g) * 0.5
    return torch.cat([mean, log_std], dim=-1)


def _normal(inputs: torch.Tensor) -> td.Normal:
    mean, log_std = inputs.chunk(2, dim=-1)
    return td.Normal(mean, log_std.exp())


# -- Categorical -----------------------------------------------------------------------------


def test_categorical_logp(logits):
    ref = td.Categorical(logits=logits)
    actions = torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(Categorical(logits).logp(actions), ref.log_prob(actions))
    # Actions stored as floats (as in some batches) are accepted too.
    torch.testing.assert_close(Categorical(logits).logp(actions.float()), ref.log_prob(actions))


def test_categorical_entropy(logits):
    ref = td.Categorical(logits=logits)
    torch.testing.assert_close(Categorical(logits).entropy(), ref.entropy())


def test_categorical_entropy_hand_computed():
    # Uniform over 4 actions: ln 4.
    d = Categorical(torch.zeros(1, 4))
    assert float(d.entropy()) == pytest.approx(math.log(4.0), rel=1e-6)


def test_categorical_kl(logits):
    other = torch.randn(5, 4, generator=_gen(2))
    ref = td.kl_divergence(td.Categorical(logits=logits), td.Categorical(logits=other))
    torch.testing.assert_close(Categorical(logits).kl(Categorical(other)), ref)
    zero = Categorical(logits).kl(Categorical(logits + 3.0))  # same distribution
    torch.testing.assert_close(zero, torch.zeros(5), atol=1e-6, rtol=0)


# Action masking puts -inf on forbidden actions; entropy and KL must stay finite and equal
# torch's (a masked action contributes 0 * log 0 = 0).
MASKED = torch.tensor([[0.0, 1.0, -math.inf], [2.0, -math.inf, -math.inf]])
MASKED_OTHER = torch.tensor([[0.5, 0.0, -math.inf], [0.0, -math.inf, -math.inf]])


def test_categorical_masked_logits_logp():
    actions = torch.tensor([1, 0])
    ref = td.Categorical(logits=MASKED).log_prob(actions)
    torch.testing.assert_close(Categorical(MASKED).logp(actions), ref)


def test_categorical_masked_logits_entropy():
    ref = td.Categorical(logits=MASKED).entropy()
    torch.testing.assert_close(Categorical(MASKED).entropy(), ref)


def test_categorical_masked_logits_kl():
    ref = td.kl_divergence(td.Categorical(logits=MASKED), td.Categorical(logits=MASKED_OTHER))
    torch.testing.assert_close(Categorical(MASKED).kl(Categorical(MASKED_OTHER)), ref)


def test_categorical_sample_frequencies_match_probabilities():
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    n = 200_000
    d = Categorical(torch.log(probs).expand(n, 4))
    samples = d.sample(_gen(123))
    assert samples.shape == (n,)
    assert samples.dtype == torch.int64
    freqs = torch.bincount(samples, minlength=4).float() / n
    # std of a frequency <= sqrt(0.25 / n) ~ 0.0011; 0.006 is > 5 sigma.
    torch.testing.assert_close(freqs, probs, atol=0.006, rtol=0)


def test_categorical_sample_frequencies_unnormalized_logits():
    # Logits that are not log-probabilities (shifted, scaled) sample from their softmax.
    logits = torch.tensor([3.0, 5.0, 4.0])
    probs = torch.softmax(logits, -1)
    n = 200_000
    samples = Categorical(logits.expand(n, 3)).sample(_gen(7))
    freqs = torch.bincount(samples, minlength=3).float() / n
    torch.testing.assert_close(freqs, probs, atol=0.006, rtol=0)


def test_categorical_sample_is_reproducible_from_generator(logits):
    a = Categorical(logits).sample(_gen(5))
    b = Categorical(logits).sample(_gen(5))
    assert torch.equal(a, b)
    many = [Categorical(logits.expand(1000, 5, 4)).sample(_gen(s)) for s in (5, 6)]
    assert not torch.equal(many[0], many[1])


def test_categorical_never_samples_zero_probability_action():
    logits = torch.tensor([0.0, -math.inf, 0.0]).expand(50_000, 3)
    samples = Categorical(logits).sample(_gen(3))
    assert not (samples == 1).any()


def test_categorical_deterministic_sample(logits):
    d = Categorical(logits)
    assert torch.equal(d.deterministic_sample(), logits.argmax(dim=-1))
    assert int(Categorical(torch.tensor([0.1, 2.0, 0.5])).deterministic_sample()) == 1


# -- DiagGaussian ---------------------------------------------------------------------------


def test_diag_gaussian_logp(gauss_inputs):
    actions = torch.randn(5, 3, generator=_gen(4))
    ref = _normal(gauss_inputs).log_prob(actions).sum(-1)
    torch.testing.assert_close(DiagGaussian(gauss_inputs).logp(actions), ref)


def test_diag_gaussian_logp_hand_computed():
    # N(a = 1; mean 0, std 1) = -1/2 - ln(2 pi)/2 ; two such dims sum.
    d = DiagGaussian(torch.tensor([[0.0, 0.0, 0.0, 0.0]]))
    expected = 2 * (-0.5 - 0.5 * math.log(2 * math.pi))
    assert float(d.logp(torch.tensor([[1.0, -1.0]]))) == pytest.approx(expected, rel=1e-6)


def test_diag_gaussian_entropy(gauss_inputs):
    ref = _normal(gauss_inputs).entropy().sum(-1)
    torch.testing.assert_close(DiagGaussian(gauss_inputs).entropy(), ref)


def test_diag_gaussian_kl(gauss_inputs):
    other = torch.randn(5, 6, generator=_gen(5)) * 0.5
    ref = td.kl_divergence(_normal(gauss_inputs), _normal(other)).sum(-1)
    torch.testing.assert_close(DiagGaussian(gauss_inputs).kl(DiagGaussian(other)), ref)
    zero = DiagGaussian(gauss_inputs).kl(DiagGaussian(gauss_inputs))
    torch.testing.assert_close(zero, torch.zeros(5), atol=1e-6, rtol=0)


def test_diag_gaussian_sample_moments():
    mean = torch.tensor([1.0, -2.0])
    std = torch.tensor([0.5, 2.0])
    n = 200_000
    inputs = torch.cat([mean, std.log()]).expand(n, 4)
    samples = DiagGaussian(inputs).sample(_gen(11))
    assert samples.shape == (n, 2)
    torch.testing.assert_close(samples.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(samples.std(0), std, atol=0.02, rtol=0)
    again = DiagGaussian(inputs).sample(_gen(11))
    assert torch.equal(again, samples)


def test_diag_gaussian_deterministic_sample(gauss_inputs):
    d = DiagGaussian(gauss_inputs)
    assert torch.equal(d.deterministic_sample(), gauss_inputs[:, :3])


def test_input_dims_and_dist_class_for():
    assert dist_class_for(gym.spaces.Discrete(3)) is Categorical
    assert dist_class_for(gym.spaces.Box(-1, 1, (2,), np.float32)) is DiagGaussian
    assert Categorical.input_dim(gym.spaces.Discrete(3)) == 3
    assert DiagGaussian.input_dim(gym.spaces.Box(-1, 1, (2,), np.float32)) == 4
    with pytest.raises(ValueError, match="Text.*Supported are Discrete"):
        dist_class_for(gym.spaces.Text(3))


def _sample_numpy(cls):
    fn = cls.__dict__.get("sample_numpy")
    if fn is None:
        pytest.skip(f"{cls.__name__}.sample_numpy is not implemented")
    return cls.sample_numpy


def test_categorical_sample_numpy_frequencies():
    sample_numpy = _sample_numpy(Categorical)
    logits = np.array([3.0, 5.0, 4.0, -np.inf], dtype=np.float32)  # unnormalized, one masked
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    n = 200_000
    samples = sample_numpy(np.broadcast_to(logits, (n, 4)), np.random.default_rng(0))
    assert samples.shape == (n,)
    freqs = np.bincount(samples, minlength=4) / n
    np.testing.assert_allclose(freqs, probs, atol=0.006)
    again = sample_numpy(np.broadcast_to(logits, (n, 4)), np.random.default_rng(0))
    np.testing.assert_array_equal(samples, again)


def test_diag_gaussian_sample_numpy_moments():
    sample_numpy = _sample_numpy(DiagGaussian)
    inputs = np.array([1.0, -2.0, np.log(0.5), np.log(2.0)], dtype=np.float32)
    n = 200_000
    samples = sample_numpy(np.broadcast_to(inputs, (n, 4)), np.random.default_rng(0))
    assert samples.shape == (n, 2)
    assert samples.dtype == np.float32
    np.testing.assert_allclose(samples.mean(0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(samples.std(0), [0.5, 2.0], atol=0.02)
