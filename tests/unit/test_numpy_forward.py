"""The EnvRunner's numpy fast path must compute what the torch forward computes."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.core.models.encoders import ACTIVATIONS

SPACES = {
    "box-obs/discrete-act": (gym.spaces.Box(-1, 1, (3, 2), np.float32), gym.spaces.Discrete(4)),
    "discrete-obs/discrete-act": (gym.spaces.Discrete(5, start=2), gym.spaces.Discrete(3)),
    "box-obs/box-act": (
        gym.spaces.Box(-1, 1, (4,), np.float32),
        gym.spaces.Box(-2, 2, (2,), np.float32),
    ),
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("spaces", SPACES.values(), ids=SPACES.keys())
def test_numpy_exploration_fn_matches_forward_exploration(spaces, activation):
    obs_space, act_space = spaces
    torch.manual_seed(0)
    module = DefaultPPOTorchRLModule(
        obs_space,
        act_space,
        model_config={
            "fcnet_hiddens": [16, 8],
            "fcnet_activation": activation,
            "log_std_init": -0.5,
        },
    )
    # Scale weights up so that the activations' non-linear ranges are exercised.
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(3.0)
    obs_space.seed(1)
    obs = np.stack([np.asarray(obs_space.sample()) for _ in range(7)])
    expected = module.forward_exploration({"obs": torch.as_tensor(obs)})["action_dist_inputs"]
    got = module.get_numpy_exploration_fn()(obs)
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_numpy_fn_sees_new_weights_only_when_rebuilt():
    module = DefaultPPOTorchRLModule(
        gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(2)
    )
    obs = np.ones((1, 2), np.float32)
    fn = module.get_numpy_exploration_fn()
    before = fn(obs)
    with torch.no_grad():
        module.pi_head.layers[0].bias.add_(1.0)
    np.testing.assert_array_equal(fn(obs), before)  # a snapshot of the weights
    np.testing.assert_allclose(module.get_numpy_exploration_fn()(obs), before + 1.0, rtol=1e-6)
