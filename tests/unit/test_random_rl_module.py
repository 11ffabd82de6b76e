"""RandomRLModule: uniform actions in the space, inputs of the right width, no weights."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.core.rl_module import Columns
from scalerl.examples.rl_modules import RandomRLModule
from scalerl.utils.errors import ConfigError


@pytest.mark.parametrize(
    "space, width",
    [
        (gym.spaces.Discrete(4), 4),
        (gym.spaces.MultiDiscrete([2, 3]), 5),
        (gym.spaces.Box(-2.0, 2.0, (3,), np.float32), 6),
    ],
)
def test_random_actions_lie_in_the_space(space, width):
    obs_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    module = RandomRLModule(observation_space=obs_space, action_space=space)
    assert list(module.parameters()) == []
    out = module.forward_exploration({Columns.OBS: torch.zeros(500, 2)})
    actions = out[Columns.ACTIONS].numpy()
    assert len(actions) == 500 and all(space.contains(a.astype(space.dtype)) for a in actions)
    assert out[Columns.ACTION_DIST_INPUTS].shape == (500, width)
    if isinstance(space, gym.spaces.Discrete):  # every action comes up
        assert set(actions.tolist()) == {0, 1, 2, 3}


def test_unsupported_space_is_a_config_error():
    with pytest.raises(ConfigError, match="RandomRLModule supports"):
        RandomRLModule(
            observation_space=gym.spaces.Discrete(2), action_space=gym.spaces.MultiBinary(3)
        )
