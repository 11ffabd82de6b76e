"""SAC's hand-written gradients equal autograd's on `sac_losses`, for every action-space
kind, twin and single critics, activations, importance weights and clipped log-stds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.sac import SACConfig
from scalerl.algorithms.sac.default_sac_rl_module import DefaultSACTorchRLModule
from scalerl.algorithms.sac.manual_gradients import sac_gradients, supports_manual_gradients
from scalerl.algorithms.sac.sac_learner import BATCH_COLUMNS, SACLearner
from scalerl.algorithms.sac.sac_loss import sac_losses
from scalerl.core.rl_module import RLModuleSpec

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
CASES = {
    "box": (OBS, gym.spaces.Box(-2.0, 2.0, (2,), np.float32), {}),
    "box-matrix-single-q": (
        gym.spaces.Dict({"x": OBS, "k": gym.spaces.Discrete(3)}),
        gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32),
        {"twin_q": False, "fcnet_activation": "tanh"},
    ),
    "discrete": (OBS, gym.spaces.Discrete(3, start=1), {}),
    "discrete-single-q": (OBS, gym.spaces.Discrete(4), {"twin_q": False, "fcnet_hiddens": [8]}),
}


def make_learner(obs_space, act_space, model_config) -> SACLearner:
    config = (
        SACConfig()
        .environment(observation_space=obs_space, action_space=act_space)
        .debugging(seed=0)
    )
    model = {"fcnet_hiddens": [16, 16], "twin_q": True, **model_config}
    return SACLearner(
        config, RLModuleSpec(DefaultSACTorchRLModule, obs_space, act_space, model_config=model)
    )


def stack(samples: list) -> np.ndarray | dict:
    if isinstance(samples[0], dict):
        return {k: np.stack([x[k] for x in samples]) for k in samples[0]}
    return np.stack(samples)


def make_batch(obs_space, act_space, B: int = 32, weights: bool = False) -> dict:
    obs_space.seed(0)
    act_space.seed(1)
    rng = np.random.default_rng(0)
    if isinstance(act_space, gym.spaces.Box):
        actions = rng.uniform(-0.99, 0.99, (B, *act_space.shape)).astype(np.float32)
    else:
        actions = np.array([act_space.sample() for _ in range(B)])
    batch = {
        "obs": stack([obs_space.sample() for _ in range(B)]),
        "actions": actions,
        "rewards": rng.normal(size=B).astype(np.float32),
        "next_obs": stack([obs_space.sample() for _ in range(B)]),
        "terminateds": (rng.random(B) < 0.2).astype(np.float32),
        "discounts": np.full(B, 0.99**2, np.float32),
    }
    if weights:
        batch["weights"] = rng.uniform(0.1, 1.0, B).astype(np.float32)
    return batch


def grads(learner: SACLearner, batch: dict, by_hand: bool):
    tensors = {k: learner.to_tensors(batch[k]) for k in BATCH_COLUMNS if k in batch}
    args = (learner.module, learner.target_qf, tensors, learner.log_alpha, learner.target_entropy)
    torch.manual_seed(7)  # the same reparameterization noise for both paths
    for opt in learner.optimizers.values():
        opt.flat_grad.fill_(123.0)  # the hand-written path must overwrite every entry
    if by_hand:
        td, stats = sac_gradients(*args)
    else:
        for opt in learner.optimizers.values():
            opt.zero_grad()
        losses, td, stats = sac_losses(*args)
        sum(losses.values()).backward()
    return {k: o.flat_grad.clone() for k, o in learner.optimizers.items()}, td, stats


@pytest.mark.parametrize("weights", [False, True], ids=["uniform", "prioritized"])
@pytest.mark.parametrize("case", list(CASES))
def test_manual_gradients_equal_autograd(case, weights):
    obs_space, act_space, model_config = CASES[case]
    learner = make_learner(obs_space, act_space, model_config)
    assert learner.fast_gradient() is not None  # the registered (SACLearner, module) pair
    # Move the target critics and alpha away from their initial values.
    with torch.no_grad():
        learner.target_params.add_(0.05 * torch.randn_like(learner.target_params))
        learner.log_alpha.fill_(-0.7)
    batch = make_batch(obs_space, act_space, weights=weights)
    expected, td_expected, stats_expected = grads(learner, batch, by_hand=False)
    got, td, stats = grads(learner, batch, by_hand=True)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    torch.testing.assert_close(td, td_expected)
    assert set(stats) == set(stats_expected)
    for key in stats:
        torch.testing.assert_close(stats[key], stats_expected[key], rtol=1e-5, atol=1e-6)
    assert all(g.abs().sum() > 0 for g in got.values())


def test_clipped_log_std_has_no_gradient():
    """Where log sigma is clipped (here: all of it, at the upper bound 2), autograd's
    clamp passes no gradient to it; neither may the hand-written path."""
    obs_space, act_space, model_config = CASES["box"]
    learner = make_learner(obs_space, act_space, model_config)
    with torch.no_grad():
        learner.module.pi.layers[-1].bias[2:] = 50.0
    batch = make_batch(obs_space, act_space)
    expected, _, _ = grads(learner, batch, by_hand=False)
    got, _, _ = grads(learner, batch, by_hand=True)
    torch.testing.assert_close(got["actor"], expected["actor"], rtol=1e-4, atol=1e-6)
    assert torch.all(learner.module.pi.layers[-1].bias.grad[2:] == 0)


def test_only_the_default_module_takes_the_manual_path():
    class MyModule(DefaultSACTorchRLModule):
        pass

    class MyLearner(SACLearner):
        def compute_losses(self, *, batch, fwd_out):
            return super().compute_losses(batch=batch, fwd_out=fwd_out)

    obs_space, act_space, model_config = CASES["box"]
    learner = make_learner(obs_space, act_space, model_config)
    assert learner.fast_gradient() is not None
    # A learner subclass (a changed loss, e.g. CQL) trains through autograd.
    config = learner.config
    spec = RLModuleSpec(DefaultSACTorchRLModule, obs_space, act_space, model_config={})
    assert MyLearner(config, spec).fast_gradient() is None

    obs_space, act_space, _ = CASES["box"]
    assert supports_manual_gradients(DefaultSACTorchRLModule(obs_space, act_space))
    assert not supports_manual_gradients(MyModule(obs_space, act_space))
    image = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    assert not supports_manual_gradients(DefaultSACTorchRLModule(image, act_space))
