"""The distributions of every action space kind against torch.distributions references:
Discrete with a start, MultiDiscrete, MultiBinary, Box of any rank, the tanh-squashed
Gaussian, and Tuple/Dict composites; plus `dist_class_for` and samples inside the space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import distributions as td

from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.core.distributions import (
    Bernoulli,
    Categorical,
    DiagGaussian,
    MultiCategorical,
    MultiDistribution,
    SquashedGaussian,
    dist_class_for,
)
from scalerl.env.env_runner import to_env_actions
from scalerl.utils import nested
from scalerl.utils.errors import ConfigError

N = 200_000  # samples for frequency checks: a frequency's std <= sqrt(0.25 / N) ~ 0.0011


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _stack_samples(space, n: int, seed: int = 0):
    space.seed(seed)
    return nested.map_structure(torch.as_tensor, nested.stack([space.sample() for _ in range(n)]))


# -- Discrete with a start ------------------------------------------------------------------


def test_categorical_with_start_offsets_actions():
    space = spaces.Discrete(4, start=-2)
    cls = dist_class_for(space)
    assert issubclass(cls, Categorical) and cls.start == -2
    logits = torch.randn(6, 4, generator=_gen(0))
    actions = torch.tensor([-2, -1, 0, 1, 1, -2])
    ref = td.Categorical(logits=logits).log_prob(actions + 2)
    torch.testing.assert_close(cls(logits).logp(actions), ref)
    assert torch.equal(cls(logits).deterministic_sample(), logits.argmax(-1) - 2)
    samples = cls(logits.expand(1000, 6, 4)).sample(_gen(1))
    assert samples.min() == -2 and samples.max() == 1
    np_samples = cls.sample_numpy(np.zeros((1000, 4), np.float32), np.random.default_rng(0))
    assert np_samples.min() == -2 and np_samples.max() == 1


# -- MultiDiscrete ----------------------------------------------------------------------------

MD_SPACE = spaces.MultiDiscrete([[3, 2], [4, 2]], start=[[1, 0], [-2, 5]])


def _md_ref(inputs: torch.Tensor) -> list[td.Categorical]:
    return [td.Categorical(logits=x) for x in inputs.split([3, 2, 4, 2], dim=-1)]


def test_multi_categorical_logp_entropy_kl():
    cls = dist_class_for(MD_SPACE)
    assert issubclass(cls, MultiCategorical) and cls.input_dim(MD_SPACE) == 11
    inputs, other = torch.randn(7, 11, generator=_gen(0)), torch.randn(7, 11, generator=_gen(1))
    actions = _stack_samples(MD_SPACE, 7)
    assert actions.shape == (7, 2, 2)
    index = (actions - torch.as_tensor(MD_SPACE.start)).reshape(7, 4)
    ref = _md_ref(inputs)
    logp = sum(r.log_prob(index[:, i]) for i, r in enumerate(ref))
    torch.testing.assert_close(cls(inputs).logp(actions), logp)
    torch.testing.assert_close(cls(inputs).entropy(), sum(r.entropy() for r in ref))
    kl = sum(td.kl_divergence(p, q) for p, q in zip(ref, _md_ref(other)))
    torch.testing.assert_close(cls(inputs).kl(cls(other)), kl)


def test_multi_categorical_samples_per_component_frequencies():
    cls = dist_class_for(spaces.MultiDiscrete([3, 2], start=[1, 0]))
    probs = [torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.9, 0.1])]
    inputs = torch.cat([p.log() for p in probs]).expand(N, 5)
    for samples in (
        cls(inputs).sample(_gen(0)),
        torch.as_tensor(cls.sample_numpy(inputs.numpy(), np.random.default_rng(0))),
    ):
        assert samples.shape == (N, 2)
        freqs0 = torch.bincount(samples[:, 0] - 1, minlength=3).float() / N
        freqs1 = torch.bincount(samples[:, 1], minlength=2).float() / N
        torch.testing.assert_close(freqs0, probs[0], atol=0.006, rtol=0)
        torch.testing.assert_close(freqs1, probs[1], atol=0.006, rtol=0)


def test_multi_categorical_deterministic_and_numpy_dtype():
    space = spaces.MultiDiscrete([3, 2], start=[1, 0], dtype=np.int32)
    cls = dist_class_for(space)
    inputs = torch.tensor([[0.0, 5.0, 1.0, 2.0, -1.0]])
    assert cls(inputs).deterministic_sample().tolist() == [[2, 0]]
    sample = cls.sample_numpy(inputs.numpy(), np.random.default_rng(0))
    assert sample.dtype == np.int32 and space.contains(sample[0])


# -- MultiBinary ----------------------------------------------------------------------------


def test_bernoulli_logp_entropy_kl():
    space = spaces.MultiBinary((2, 3))
    cls = dist_class_for(space)
    assert issubclass(cls, Bernoulli) and cls.input_dim(space) == 6
    inputs = torch.randn(5, 6, generator=_gen(0)) * 3
    other = torch.randn(5, 6, generator=_gen(1))
    actions = _stack_samples(space, 5)
    ref = td.Bernoulli(logits=inputs)
    logp = ref.log_prob(actions.reshape(5, 6).float()).sum(-1)
    torch.testing.assert_close(cls(inputs).logp(actions), logp)
    torch.testing.assert_close(cls(inputs).entropy(), ref.entropy().sum(-1))
    kl = td.kl_divergence(ref, td.Bernoulli(logits=other)).sum(-1)
    torch.testing.assert_close(cls(inputs).kl(cls(other)), kl)


def test_bernoulli_sample_frequencies_and_dtype():
    cls = dist_class_for(spaces.MultiBinary(3))
    p = torch.tensor([0.1, 0.5, 0.8])
    inputs = torch.logit(p).expand(N, 3)
    torch_samples = cls(inputs).sample(_gen(0))
    np_samples = cls.sample_numpy(inputs.numpy(), np.random.default_rng(0))
    assert torch_samples.dtype == torch.int8 and np_samples.dtype == np.int8
    for samples in (torch_samples.float(), torch.as_tensor(np_samples).float()):
        torch.testing.assert_close(samples.mean(0), p, atol=0.006, rtol=0)
    big = np.array([[-200.0, 200.0, 0.0]], np.float32)  # no overflow, exact extremes
    assert cls.sample_numpy(big, np.random.default_rng(0))[0, :2].tolist() == [0, 1]
    assert cls(torch.as_tensor(big)).deterministic_sample().tolist() == [[0, 1, 0]]


# -- Box of any rank -----------------------------------------------------------------------


def test_diag_gaussian_rank2_box():
    space = spaces.Box(-1.0, 1.0, (2, 3), np.float32)
    cls = dist_class_for(space)
    assert issubclass(cls, DiagGaussian) and cls.input_dim(space) == 12
    inputs = torch.randn(4, 12, generator=_gen(0))
    actions = torch.randn(4, 2, 3, generator=_gen(1))
    mean, log_std = inputs.chunk(2, -1)
    ref = td.Normal(mean, log_std.exp())
    torch.testing.assert_close(
        cls(inputs).logp(actions), ref.log_prob(actions.reshape(4, 6)).sum(-1)
    )
    assert cls(inputs).sample(_gen(0)).shape == (4, 2, 3)
    assert torch.equal(cls(inputs).deterministic_sample(), mean.reshape(4, 2, 3))
    assert cls.sample_numpy(inputs.numpy(), np.random.default_rng(0)).shape == (4, 2, 3)
    # A vector Box is served by the generic class itself.
    assert dist_class_for(spaces.Box(-1.0, 1.0, (5,))) is DiagGaussian


# -- Squashed Gaussian ---------------------------------------------------------------------


def _tanh_normal(inputs: torch.Tensor) -> td.Distribution:
    mean, log_std = inputs.chunk(2, -1)
    base = td.Normal(mean.double(), log_std.double().exp())
    return td.TransformedDistribution(base, [td.TanhTransform()])


def test_squashed_gaussian_logp_has_the_tanh_jacobian():
    inputs = torch.cat([torch.randn(6, 2, generator=_gen(0)), 0.3 * torch.randn(6, 2)], -1)
    actions = torch.rand(6, 2, generator=_gen(1)) * 1.9 - 0.95
    ref = _tanh_normal(inputs).log_prob(actions.double()).sum(-1).float()
    torch.testing.assert_close(SquashedGaussian(inputs).logp(actions), ref, rtol=1e-4, atol=1e-4)
    # The correction itself: log pi(a) = log N(atanh a) - sum log(1 - a^2).
    u = torch.atanh(actions)
    gauss = DiagGaussian(inputs).logp(u)
    torch.testing.assert_close(
        SquashedGaussian(inputs).logp(actions),
        gauss - torch.log(1 - actions.pow(2)).sum(-1),
        rtol=1e-4,
        atol=1e-4,
    )


def test_squashed_gaussian_density_integrates_to_one():
    inputs = torch.tensor([[0.7, math.log(0.8)]])
    a = torch.linspace(-1, 1, 200_001)[1:-1, None]
    density = SquashedGaussian(inputs.expand(len(a), 2)).logp(a).double().exp()
    integral = torch.trapezoid(density, a.squeeze(-1).double())
    assert float(integral) == pytest.approx(1.0, abs=2e-3)


def test_squashed_gaussian_samples_and_rsample_logp():
    inputs = torch.tensor([[3.0, 1.0], [-0.5, 0.0]]).repeat(5000, 1)
    d = SquashedGaussian(inputs)
    s = d.sample(_gen(0))
    assert (s.abs() <= 1).all() and s.abs().max() > 0.99  # tanh, and mean 3 reaches the edge
    np_s = SquashedGaussian.sample_numpy(inputs.numpy(), np.random.default_rng(0))
    assert np_s.dtype == np.float32 and (np.abs(np_s) <= 1).all()
    assert torch.equal(d.deterministic_sample(), torch.tanh(inputs[:, :1]))
    # rsample_and_logp: gradients reach the inputs; its logp is logp(a) away from +-1.
    x = torch.tensor([[0.2, -0.5]] * 64, requires_grad=True)
    a, logp = SquashedGaussian(x).rsample_and_logp(_gen(1))
    torch.testing.assert_close(logp, SquashedGaussian(x).logp(a), rtol=1e-4, atol=1e-4)
    (a.sum() + logp.sum()).backward()
    assert x.grad.abs().sum() > 0
    other = torch.tensor([[0.0, 0.3]]).expand(10000, 2)
    torch.testing.assert_close(
        d.kl(SquashedGaussian(other)), DiagGaussian(inputs).kl(DiagGaussian(other))
    )
    with pytest.raises(NotImplementedError, match="rsample_and_logp"):
        d.entropy()


# -- Tuple and Dict composites -------------------------------------------------------------

NESTED = spaces.Dict(
    {
        "a": spaces.Tuple((spaces.Discrete(3, start=1), spaces.Box(-1.0, 1.0, (2, 1)))),
        "b": spaces.MultiBinary(2),
        "c": spaces.MultiDiscrete([2, 2]),
    }
)
CHILD_DIMS = [3, 4, 2, 4]  # Discrete, Box (mean + log-std), MultiBinary, MultiDiscrete


def test_composite_splits_inputs_in_space_order():
    cls = dist_class_for(NESTED)
    assert issubclass(cls, MultiDistribution) and cls.input_dim(NESTED) == sum(CHILD_DIMS)
    inputs = torch.randn(5, 13, generator=_gen(0))
    other = torch.randn(5, 13, generator=_gen(1))
    parts, other_parts = inputs.split(CHILD_DIMS, -1), other.split(CHILD_DIMS, -1)
    leaves = [dist_class_for(s) for s in (NESTED["a"][0], NESTED["a"][1], NESTED["b"], NESTED["c"])]
    actions = _stack_samples(NESTED, 5)
    leaf_actions = [actions["a"][0], actions["a"][1], actions["b"], actions["c"]]
    d = cls(inputs)
    logp = sum(c(x).logp(a) for c, x, a in zip(leaves, parts, leaf_actions))
    torch.testing.assert_close(d.logp(actions), logp)
    torch.testing.assert_close(d.entropy(), sum(c(x).entropy() for c, x in zip(leaves, parts)))
    kl = sum(c(x).kl(c(y)) for c, x, y in zip(leaves, parts, other_parts))
    torch.testing.assert_close(d.kl(cls(other)), kl)
    greedy = d.deterministic_sample()
    assert set(greedy) == {"a", "b", "c"} and isinstance(greedy["a"], tuple)
    assert torch.equal(greedy["a"][1], parts[1][:, :2].reshape(5, 2, 1))
    assert torch.equal(greedy["b"], (parts[2] > 0).to(torch.int8))


def test_composite_sample_structure_and_reproducibility():
    cls = dist_class_for(NESTED)
    inputs = torch.randn(4, 13, generator=_gen(0))
    a, b = cls(inputs).sample(_gen(3)), cls(inputs).sample(_gen(3))
    for x, y in zip(nested.leaves(a), nested.leaves(b)):
        assert torch.equal(x, y)
    shapes = [tuple(x.shape) for x in nested.leaves(a)]
    assert shapes == [(4,), (4, 2, 1), (4, 2), (4, 2)]


SPACES = {
    "discrete-start": spaces.Discrete(3, start=5),
    "multi-discrete": spaces.MultiDiscrete([3, 2], start=[-1, 1]),
    "multi-binary": spaces.MultiBinary([2, 2]),
    "box-rank0": spaces.Box(-1.0, 1.0, (), np.float32),
    "box-rank3": spaces.Box(0.0, 2.0, (2, 1, 2), np.float32),
    "nested": NESTED,
}


@pytest.mark.parametrize("space", SPACES.values(), ids=SPACES.keys())
def test_sample_numpy_lies_in_the_space(space):
    cls = dist_class_for(space)
    rng = np.random.default_rng(0)
    inputs = rng.normal(0, 3, (50, cls.input_dim(space))).astype(np.float32)
    for actions in (
        cls.sample_numpy(inputs, rng),
        nested.map_structure(lambda t: t.numpy(), cls(torch.as_tensor(inputs)).sample()),
        nested.map_structure(
            lambda t: t.numpy(), cls(torch.as_tensor(inputs)).deterministic_sample()
        ),
    ):
        env_actions = to_env_actions(actions, space, normalize=True, clip=False)
        for i in range(50):
            assert space.contains(nested.map_structure(np.asarray, nested.index(env_actions, i)))


def test_dist_class_for_caches_equal_spaces_and_names_unsupported_ones():
    assert dist_class_for(NESTED) is dist_class_for(spaces.Dict(dict(NESTED.spaces)))
    assert dist_class_for(spaces.Discrete(3, start=1)) is not dist_class_for(spaces.Discrete(3))
    for bad in (spaces.Text(4), spaces.Box(0, 5, (2,), np.int32), spaces.Tuple(())):
        with pytest.raises(ConfigError, match="no action distribution. Supported are Discrete"):
            dist_class_for(bad)
    with pytest.raises(ConfigError, match=r"Sequence.*inside action space Dict"):
        dist_class_for(spaces.Dict({"x": spaces.Sequence(spaces.Discrete(2))}))


def test_default_module_starts_box_parts_log_std_at_log_std_init():
    act_space = spaces.Tuple((spaces.Discrete(2), spaces.Box(-1.0, 1.0, (3,))))
    obs_space = spaces.Box(-1.0, 1.0, (4,))
    module = DefaultPPOTorchRLModule(obs_space, act_space, model_config={"log_std_init": -0.7})
    assert not module.free_log_std
    inputs = module.forward_inference({"obs": torch.zeros(1, 4)})["action_dist_inputs"]
    assert inputs.shape == (1, 8)
    torch.testing.assert_close(inputs[0, 5:], torch.full((3,), -0.7))  # zero obs: the bias
    torch.testing.assert_close(inputs[0, :5], torch.zeros(5))
