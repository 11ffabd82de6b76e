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
from scalerl.env.env_runner import to_env_actions
from scalerl.examples.envs import SpaceTestEnv
from scalerl.utils import nested
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
    "discrete-start": spaces.Discrete(3, start=1),
    "multi-discrete": spaces.MultiDiscrete([3, 2]),
    "multi-binary": spaces.MultiBinary(4),
    "box-rank2": spaces.Box(-1.0, 3.0, (2, 2), np.float32),
    "tuple": spaces.Tuple((spaces.Discrete(2), spaces.Box(-1.0, 1.0, (2,), np.float32))),
    "dict": spaces.Dict(
        {"move": spaces.Discrete(4), "force": spaces.Box(0.0, 5.0, (1,), np.float32)}
    ),
    "nested-dict-tuple-multi-binary": spaces.Dict(
        {
            "t": spaces.Tuple(
                (spaces.MultiDiscrete([2, 3], start=[1, -1]), spaces.Box(-1.0, 1.0, (3,)))
            ),
            "bits": spaces.MultiBinary([2, 2]),
        }
    ),
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
            assert act_space.contains(action), action
        # The restored algorithm acts exactly as the original (greedy).
        for a, b in zip(
            nested.leaves(restored.compute_single_action(obs)),
            nested.leaves(algo.compute_single_action(obs)),
        ):
            np.testing.assert_array_equal(a, b)
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


@pytest.mark.parametrize("act_space", ACTION_SPACES.values(), ids=ACTION_SPACES.keys())
def test_action_space(act_space, tmp_path):
    obs_space = BOX
    check_round_trip(build(obs_space, act_space), tmp_path, obs_space, act_space)


def test_sampled_actions_are_recorded_nested_and_in_the_space():
    act_space = ACTION_SPACES["nested-dict-tuple-multi-binary"]
    algo = build(BOX, act_space)
    batch, _ = algo.env_runner_group.local_runner.sample(8)
    actions = batch["actions"]
    assert actions["bits"].shape == (8, 2, 2, 2) and actions["bits"].dtype == np.int8
    assert actions["t"][0].shape == (8, 2, 2) and actions["t"][0].dtype == np.int64
    assert actions["t"][1].shape == (8, 2, 3) and actions["t"][1].dtype == np.float32
    # Integer leaves are recorded as sampled, in their spaces; Box leaves as the Gaussian
    # sampled them (log pi needs that), mapped into the Box only on the way to the env.
    for t in range(8):
        for i in range(2):
            assert act_space["bits"].contains(actions["bits"][t, i])
            assert act_space["t"][0].contains(actions["t"][0][t, i])
            env_action = to_env_actions(nested.index(actions, (t, i)), act_space, True, False)
            assert act_space.contains(env_action)
    assert np.abs(actions["t"][1]).max() > 1.0  # the test saw unsquashing at work
    # log pi_old of the recorded actions, from the recorded distribution inputs.
    flat = algo.learner_group.get_local_learner().compute_advantages(batch)
    assert flat["action_logp"].shape == (16,) and np.isfinite(flat["action_logp"]).all()
    algo.stop()


def test_unsupported_action_space_names_the_space():
    for act_space in (
        spaces.Text(5),
        spaces.Box(0, 3, (2,), np.int64),
        spaces.Tuple((spaces.Discrete(2), spaces.Sequence(spaces.Discrete(2)))),
    ):
        with pytest.raises(ConfigError, match="has no action distribution.*Supported are"):
            build(BOX, act_space)


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
