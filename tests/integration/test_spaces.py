"""PPO on every observation and action space kind: train two iterations, checkpoint and
restore, and act inside the action space (issue 3, acceptance 1)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.examples.envs import SpaceTestEnv
from scalerl.utils.errors import ConfigError

BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)
OBS_SPACES = {
    "discrete": spaces.Discrete(5, start=1),
    "multi-discrete": spaces.MultiDiscrete([3, 4, 2]),
    "multi-binary": spaces.MultiBinary(6),
    "box-rank2": spaces.Box(-2.0, 2.0, (3, 4), np.float32),
    "image-uint8": spaces.Box(0, 255, (12, 12, 3), np.uint8),
    "image-float": spaces.Box(0.0, 1.0, (10, 8, 1), np.float32),
    "tuple": spaces.Tuple((spaces.Discrete(3), BOX)),
    "dict": spaces.Dict({"a": BOX, "b": spaces.MultiBinary(2)}),
    "nested-dict-tuple-box": spaces.Dict(
        {
            "t": spaces.Tuple((spaces.Discrete(2), spaces.MultiDiscrete([2, 3]), BOX)),
            "box": spaces.Box(-1.0, 1.0, (2, 2), np.float32),
            "img": spaces.Box(0, 255, (8, 8, 1), np.uint8),
        }
    ),
}
ACTION_SPACES = {
    "discrete": spaces.Discrete(3),
    "box": spaces.Box(-2.0, 2.0, (2,), np.float32),
}
SMALL = dict(train_batch_size=64, minibatch_size=32, num_epochs=1)
CONV = [[4, 3, 2], [8, 3, 2]]


def build(obs_space: gym.Space, act_space: gym.Space) -> Algorithm:
    return (
        PPOConfig()
        .environment(
            SpaceTestEnv, env_config={"observation_space": obs_space, "action_space": act_space}
        )
        .env_runners(num_envs_per_env_runner=2)
        .training(**SMALL)
        .rl_module(model_config={"fcnet_hiddens": [16], "conv_filters": CONV})
        .debugging(seed=0)
        .build_algo()
    )


def check_round_trip(algo: Algorithm, tmp_path, obs_space: gym.Space, act_space: gym.Space):
    for _ in range(2):
        result = algo.train()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 128
    assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    restored = Algorithm.from_checkpoint(path)
    obs_space.seed(3)
    for _ in range(5):
        obs = obs_space.sample()
        for explore in (False, True):
            action = algo.compute_single_action(obs, explore=explore)
            assert act_space.contains(np.asarray(action, dtype=act_space.dtype)), action
        # The restored algorithm acts exactly as the original (greedy).
        np.testing.assert_array_equal(
            np.asarray(restored.compute_single_action(obs)),
            np.asarray(algo.compute_single_action(obs)),
        )
    for a, b in zip(algo.get_module().parameters(), restored.get_module().parameters()):
        assert torch.equal(a, b)
    restored.stop()
    algo.stop()


@pytest.mark.parametrize("obs_space", OBS_SPACES.values(), ids=OBS_SPACES.keys())
def test_observation_space(obs_space, tmp_path):
    act_space = ACTION_SPACES["discrete"]
    check_round_trip(build(obs_space, act_space), tmp_path, obs_space, act_space)


def test_box_action_with_nested_observation(tmp_path):
    obs_space, act_space = OBS_SPACES["nested-dict-tuple-box"], ACTION_SPACES["box"]
    check_round_trip(build(obs_space, act_space), tmp_path, obs_space, act_space)


def test_image_observation_gets_a_cnn_and_vector_observation_does_not():
    algo = build(OBS_SPACES["image-uint8"], ACTION_SPACES["discrete"])
    module = algo.get_module()
    assert module.pre.has_params and module.vf_pre is not None  # separate value CNN
    assert module.get_numpy_exploration_fn() is None  # runners use the torch forward
    algo.stop()
    algo = build(OBS_SPACES["dict"], ACTION_SPACES["discrete"])
    assert not algo.get_module().pre.has_params
    assert algo.get_module().get_numpy_exploration_fn() is not None
    algo.stop()


def test_unsupported_observation_space_names_the_space():
    obs_space = spaces.Text(5)
    with pytest.raises(ConfigError, match="Text.*Supported are Box"):
        build(obs_space, ACTION_SPACES["discrete"])
