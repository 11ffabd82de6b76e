"""The hand-written PPO gradient must equal autograd's gradient of `ppo_loss`.

Autograd is the oracle: for every space kind, activation, shared or separate value
layers, and each optional loss term, both paths run on the same module and minibatch,
and every parameter's gradient and every reported loss term must agree.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.ppo import PPOConfig, manual_gradients
from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.algorithms.ppo.ppo_learner import PPOLearner, ppo_fast_gradient, ppo_loss
from scalerl.core.distributions import (
    Bernoulli,
    Categorical,
    DiagGaussian,
    MultiCategorical,
    SquashedGaussian,
    dist_class_for,
)
from scalerl.core.models.encoders import ACTIVATIONS
from scalerl.core.optim import Adam
from scalerl.core.rl_module import Columns, RLModuleSpec
from scalerl.utils import nested

SPACES = {
    "box-obs/discrete-act": (gym.spaces.Box(-1, 1, (3, 2), np.float32), gym.spaces.Discrete(4)),
    "discrete-obs/discrete-act": (gym.spaces.Discrete(5, start=2), gym.spaces.Discrete(3)),
    "box-obs/box-act": (
        gym.spaces.Box(-1, 1, (4,), np.float32),
        gym.spaces.Box(-2, 2, (2,), np.float32),
    ),
    "box-obs/multi-discrete-act": (
        gym.spaces.Box(-1, 1, (4,), np.float32),
        gym.spaces.MultiDiscrete([3, 2, 4], start=[1, 0, -2]),
    ),
    "box-obs/multi-binary-act": (
        gym.spaces.Box(-1, 1, (4,), np.float32),
        gym.spaces.MultiBinary((2, 3)),
    ),
    "box-obs/box-rank2-act": (
        gym.spaces.Box(-1, 1, (4,), np.float32),
        gym.spaces.Box(-1, 1, (2, 2), np.float32),
    ),
    "box-obs/nested-act": (
        gym.spaces.Box(-1, 1, (4,), np.float32),
        gym.spaces.Dict(
            {
                "d": gym.spaces.Discrete(3, start=1),
                "t": gym.spaces.Tuple(
                    (gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.MultiBinary(2))
                ),
            }
        ),
    ),
}
LOSS_TERMS = {
    "plain": dict(vf_clip_param=None, entropy_coeff=0.0, use_kl_loss=False),
    "all-terms": dict(vf_clip_param=0.5, entropy_coeff=0.05, use_kl_loss=True),
}


def make_case(spaces, model_config, seed=0, n=37):
    """A module (with an optimizer, which gives its parameters `.grad` buffers) and a
    minibatch whose probability ratios spread well past the clip range."""
    obs_space, act_space = spaces
    torch.manual_seed(seed)
    module = DefaultPPOTorchRLModule(obs_space, act_space, model_config=model_config)
    with torch.no_grad():  # larger weights: exercise the activations' non-linear ranges
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    opt = Adam(module.parameters(), lr=1e-3)
    obs_space.seed(seed)
    act_space.seed(seed)
    obs = torch.as_tensor(np.stack([np.asarray(obs_space.sample()) for _ in range(n)]))
    actions = nested.map_structure(
        torch.as_tensor, nested.stack([act_space.sample() for _ in range(n)])
    )
    dist_cls = module.get_train_action_dist_cls()
    with torch.no_grad():
        old_inputs = module.forward_train({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        old_inputs = old_inputs + 0.5 * torch.randn_like(old_inputs)
    batch = {
        Columns.OBS: obs,
        Columns.ACTIONS: actions,
        Columns.ACTION_DIST_INPUTS: old_inputs,
        Columns.ACTION_LOGP: dist_cls(old_inputs).logp(actions),
        Columns.ADVANTAGES: torch.randn(n),
        Columns.VALUE_TARGETS: torch.randn(n),
    }
    return module, opt, dist_cls, batch


def both_paths(module, opt, dist_cls, batch, coeffs):
    opt.zero_grad()
    loss, auto_stats = ppo_loss(dist_cls, batch, module.forward_train(batch), **coeffs)
    loss.backward()
    auto_grad = opt.flat_grad.clone()
    opt.flat_grad.fill_(123.0)  # the manual path must overwrite every gradient
    manual_stats = manual_gradients.ppo_gradients(module, dist_cls, batch, **coeffs)
    return auto_grad, opt.flat_grad.clone(), auto_stats, manual_stats


@pytest.mark.parametrize("terms", LOSS_TERMS.values(), ids=LOSS_TERMS.keys())
@pytest.mark.parametrize("vf_share_layers", [False, True])
@pytest.mark.parametrize("spaces", SPACES.values(), ids=SPACES.keys())
def test_manual_gradient_equals_autograd(spaces, vf_share_layers, terms):
    model_config = {"fcnet_hiddens": [16, 8], "vf_share_layers": vf_share_layers}
    module, opt, dist_cls, batch = make_case(spaces, model_config)
    assert manual_gradients.supported(module, dist_cls)
    coeffs = dict(clip_param=0.2, vf_loss_coeff=0.7, kl_coeff=0.3, **terms)
    auto_grad, manual_grad, auto_stats, manual_stats = both_paths(
        module, opt, dist_cls, batch, coeffs
    )
    assert auto_grad.abs().max() > 1e-3  # a real gradient, not all zeros
    torch.testing.assert_close(manual_grad, auto_grad, rtol=1e-4, atol=1e-6)
    # Entropy and KL are reported only when they are loss terms (the learner measures
    # both once per update).
    expected = {"total_loss", "policy_loss", "vf_loss"}
    expected |= {"entropy"} if terms["entropy_coeff"] else set()
    expected |= {"mean_kl_loss"} if terms["use_kl_loss"] else set()
    assert set(manual_stats) == expected
    for k in expected:
        torch.testing.assert_close(manual_stats[k], auto_stats[k].detach(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hiddens", [[], [8], [16, 8, 4]], ids=["none", "one", "three"])
def test_manual_gradient_every_activation_and_depth(activation, hiddens):
    model_config = {"fcnet_hiddens": hiddens, "fcnet_activation": activation}
    module, opt, dist_cls, batch = make_case(SPACES["box-obs/box-act"], model_config, seed=3)
    coeffs = dict(clip_param=0.3, vf_loss_coeff=0.5, kl_coeff=0.2, **LOSS_TERMS["all-terms"])
    auto_grad, manual_grad, _, _ = both_paths(module, opt, dist_cls, batch, coeffs)
    torch.testing.assert_close(manual_grad, auto_grad, rtol=1e-4, atol=1e-6)


GRADIENT_SPACES = {
    "categorical": gym.spaces.Discrete(6),
    "categorical-start": gym.spaces.Discrete(6, start=-3),
    "gaussian": gym.spaces.Box(-1, 1, (3,), np.float32),
    "gaussian-rank2": gym.spaces.Box(-1, 1, (1, 3), np.float32),
    "multi-categorical": gym.spaces.MultiDiscrete([[2, 4]], start=[[1, 0]]),
    "bernoulli": gym.spaces.MultiBinary(6),
    "tuple-dict": gym.spaces.Tuple(
        (
            gym.spaces.Dict({"a": gym.spaces.Discrete(3), "b": gym.spaces.MultiBinary(1)}),
            gym.spaces.Box(-1, 1, (1,), np.float32),
        )
    ),
}


@pytest.mark.parametrize("space", GRADIENT_SPACES.values(), ids=GRADIENT_SPACES.keys())
def test_distribution_gradients_match_autograd(space):
    dist_cls = dist_class_for(space)
    assert dist_cls.has_hand_gradients()
    assert dist_cls.input_dim(space) == 6
    torch.manual_seed(0)
    inputs = torch.randn(9, 6, requires_grad=True)
    old = dist_cls(torch.randn(9, 6))
    space.seed(0)
    actions = nested.map_structure(
        torch.as_tensor, nested.stack([space.sample() for _ in range(9)])
    )
    fixed = dist_cls(inputs.detach())
    logp, dlogp = fixed.logp_grad(actions)
    torch.testing.assert_close(logp, dist_cls(inputs).logp(actions).detach())
    for value_fn, manual in [
        (lambda pi: pi.logp(actions), dlogp),
        (lambda pi: pi.entropy(), fixed.entropy_grad()),
        (lambda pi: old.kl(pi), fixed.kl_grad(old)),
    ]:
        (auto,) = torch.autograd.grad(value_fn(dist_cls(inputs)).sum(), inputs)
        torch.testing.assert_close(manual, auto, rtol=1e-5, atol=1e-6)


def test_hand_gradients_only_for_classes_that_write_them_out():
    for cls in (Categorical, DiagGaussian, MultiCategorical, Bernoulli):
        assert cls.has_hand_gradients()
    assert not SquashedGaussian.has_hand_gradients()

    class MyCategorical(Categorical):  # may change logp: autograd, unless it says so
        pass

    assert not MyCategorical.has_hand_gradients()
    module = DefaultPPOTorchRLModule(*SPACES["box-obs/discrete-act"])
    Adam(module.parameters(), lr=1e-3)
    assert manual_gradients.supported(module, Categorical)
    assert not manual_gradients.supported(module, MyCategorical)
    tuple_space = gym.spaces.Tuple(
        (gym.spaces.Discrete(2), gym.spaces.Box(-1, 1, (1,), np.float32))
    )
    assert dist_class_for(tuple_space).has_hand_gradients()


def test_learner_uses_manual_path_only_for_the_default_module():
    class MyModule(DefaultPPOTorchRLModule):
        pass

    obs_space, act_space = SPACES["box-obs/discrete-act"]
    config = PPOConfig().environment(observation_space=obs_space, action_space=act_space)
    default = PPOLearner(config, RLModuleSpec(DefaultPPOTorchRLModule, obs_space, act_space))
    custom = PPOLearner(config, RLModuleSpec(MyModule, obs_space, act_space))
    dist_cls = default.module.get_train_action_dist_cls()
    assert manual_gradients.supported(default.module, dist_cls)
    assert not manual_gradients.supported(custom.module, dist_cls)
    assert default.fast_gradient() is ppo_fast_gradient
    assert custom.fast_gradient() is None


def test_update_is_the_same_with_and_without_manual_gradients(monkeypatch):
    """One whole PPO update (several epochs of minibatches) from the same start and data
    ends in the same weights either way."""
    obs_space, act_space = SPACES["box-obs/box-act"]
    config = (
        PPOConfig()
        .environment(observation_space=obs_space, action_space=act_space)
        .training(minibatch_size=16, num_epochs=3, entropy_coeff=0.01, use_kl_loss=True)
        .debugging(seed=0)
    )
    T, N = 20, 3
    rng = np.random.default_rng(0)
    fragment = {
        Columns.OBS: rng.uniform(-1, 1, (T, N, 4)).astype(np.float32),
        Columns.ACTIONS: rng.uniform(-2, 2, (T, N, 2)).astype(np.float32),
        Columns.ACTION_DIST_INPUTS: rng.normal(0, 0.3, (T, N, 4)).astype(np.float32),
        Columns.REWARDS: rng.normal(size=(T, N)).astype(np.float32),
        Columns.TERMINATEDS: rng.random((T, N)) < 0.05,
        Columns.TRUNCATEDS: np.zeros((T, N), bool),
        "bootstrap_obs": rng.uniform(-1, 1, (N, 4)).astype(np.float32),
        "trunc_index": np.zeros(0, np.int64),
        "trunc_obs": np.zeros((0, 4), np.float32),
    }
    weights = []
    for by_hand in (False, True):
        learner = PPOLearner(config, RLModuleSpec(DefaultPPOTorchRLModule, obs_space, act_space))
        if not by_hand:
            monkeypatch.setattr(learner, "fast_gradient", lambda: None)
        assert (learner.fast_gradient() is ppo_fast_gradient) == by_hand
        metrics = learner.update({k: v.copy() for k, v in fragment.items()}, timestep=0)
        weights.append(learner.optimizer.flat_param.clone())
        assert np.isfinite(metrics["total_loss"])
    assert not torch.equal(
        weights[0],
        PPOLearner(
            config, RLModuleSpec(DefaultPPOTorchRLModule, obs_space, act_space)
        ).optimizer.flat_param,
    )  # the update moved the weights
    torch.testing.assert_close(weights[1], weights[0], rtol=1e-4, atol=1e-5)
