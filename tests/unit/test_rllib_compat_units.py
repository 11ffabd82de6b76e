"""Units of the RLlib compatibility layer: legacy YAML keys, the new builder methods'
checks, initializer names, FlattenObservations, the unsupported-path errors, n-step
ranges and RLlib's buffer names."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.legacy_keys import translate_settings, translate_stop, yaml_number
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.replay import buffer_kind, draw_n_step
from scalerl.connectors.env_to_module import FlattenObservations
from scalerl.core.models.initializers import initializer_name, normalize_model_config
from scalerl.utils.errors import ConfigError


@pytest.mark.parametrize(
    "text, value",
    [("1e-3", 0.001), ("5e5", 500000), ("-2.5E-2", -0.025), ("1.0e3", 1000.0), ("1e", "1e")],
)
def test_yaml_exponent_strings_read_as_numbers(text, value):
    out = yaml_number(text)
    assert out == value and type(out) is type(value)


def test_legacy_settings_are_renamed_and_nested_values_converted():
    out = translate_settings(
        {
            "lambda": 0.9,
            "num_workers": 2,
            "sgd_minibatch_size": 64,
            "num_sgd_iter": 3,
            "lr": [[0, "1e-3"], [1000, "1e-4"]],
            "model": {"fcnet_hiddens": [8], "post_fcnet_hiddens": [4]},
            "vf_share_layers": True,
            "env_config": {"id": "1e3"},  # the env's own values stay as written
            "_enable_new_api_stack": True,
            "evaluation_config": {"num_envs_per_worker": 2},
            "multiagent": {"policies_to_train": ["p0"]},
        }
    )
    assert out == {
        "lambda_": 0.9,
        "num_env_runners": 2,
        "minibatch_size": 64,
        "num_epochs": 3,
        "lr": [[0, 0.001], [1000, 0.0001]],
        "model_config": {"fcnet_hiddens": [8], "head_fcnet_hiddens": [4], "vf_share_layers": True},
        "env_config": {"id": "1e3"},
        "evaluation_config": {"num_envs_per_env_runner": 2},
        "policies_to_train": ["p0"],
    }


def test_legacy_keys_that_have_no_meaning_here_are_errors():
    with pytest.raises(ConfigError, match="custom ModelV2 models"):
        translate_settings({"model": {"custom_model": "my_model"}})
    with pytest.raises(ConfigError, match="same setting"):
        translate_settings({"num_epochs": 2, "num_sgd_iter": 3})
    with pytest.raises(ConfigError, match="EpsilonGreedy"):
        translate_settings({"exploration_config": {"type": "OrnsteinUhlenbeckNoise"}})
    assert translate_stop({"episode_reward_mean": 100, "timesteps_total": "1e5"}) == {
        "env_runners/episode_return_mean": 100,
        "num_env_steps_sampled_lifetime": 100000,
    }


def test_yaml_framework_tf_is_read_as_torch_with_a_warning():
    with pytest.warns(UserWarning, match="read as 'torch'"):
        assert translate_settings({"framework": "tf2"})["framework"] == "torch"


def test_new_builder_methods_validate_and_store_their_settings():
    config = PPOConfig().environment("CartPole-v1")
    config.resources(num_cpus_for_main_process=2, placement_strategy="SPREAD")
    config.experimental(_disable_preprocessor_api=True)  # old stack: accepted, not stored
    config.validate()
    stored = config.to_dict()
    assert stored["num_cpus_for_main_process"] == 2 and "_disable_preprocessor_api" not in stored
    with pytest.raises(ConfigError, match="placement_strategy"):
        config.copy().resources(placement_strategy="SPREADX").validate()
    with pytest.raises(ConfigError, match="Did you mean `num_gpus`"):
        config.copy().resources(num_gpu=1)
    with pytest.raises(ConfigError, match="torch lr scheduler classes"):
        config.copy().experimental(_torch_lr_scheduler_classes=[object]).validate()
    with pytest.raises(ConfigError, match="recording experience"):
        config.copy().offline_data(output="/tmp/out").validate()
    with pytest.raises(ConfigError, match="both `model_config` and `model_config_dict`"):
        config.copy().rl_module(model_config={}, model_config_dict={})


def test_validate_config_false_skips_validation():
    config = PPOConfig().environment("CartPole-v1").training(gamma=2.0)
    with pytest.raises(ConfigError, match="gamma"):
        config.validate()
    config.experimental(_validate_config=False)
    assert config._validate_config is False  # build_algo() would not call validate()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("xavier_uniform", "xavier_uniform_"),
        ("orthogonal_", "orthogonal_"),
        ("XavierNormal", "xavier_normal_"),
    ],
)
def test_initializer_names(name, expected):
    assert initializer_name(name, "fcnet_kernel_initializer") == expected


def test_initializer_errors_and_torch_functions():
    with pytest.raises(ConfigError, match="Did you mean `xavier_uniform_`"):
        initializer_name("xavier_unifrom", "fcnet_kernel_initializer")
    with pytest.raises(ConfigError, match="give the name"):
        initializer_name(lambda t: t, "fcnet_kernel_initializer")
    out = normalize_model_config(
        {"fcnet_kernel_initializer": torch.nn.init.kaiming_normal_, "head_fcnet_activation": None}
    )
    assert out == {"fcnet_kernel_initializer": "kaiming_normal_", "head_fcnet_activation": "linear"}


def test_flatten_observations_one_hot_and_keys_to_remove():
    space = gym.spaces.Dict(
        {"b": gym.spaces.Discrete(3), "a": gym.spaces.Box(-1, 1, (2,), np.float32)}
    )
    flat = FlattenObservations(space)
    obs = {"a": np.array([0.5, -0.5], np.float32), "b": 2}
    np.testing.assert_array_equal(flat.preprocess(obs), [0.5, -0.5, 0.0, 0.0, 1.0])
    assert flat.observation_space.shape == (5,)
    kept = FlattenObservations(space, keys_to_remove=["a"])
    np.testing.assert_array_equal(kept.preprocess(obs), [0.0, 0.0, 1.0])
    wrapped = flat.as_env_wrapper(gym.make("CartPole-v1"))
    assert wrapped.observation_space.shape == (4,)


def test_flatten_observations_is_refused_where_it_would_differ_from_rllib():
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(env_to_module_connector=lambda env: FlattenObservations(keys_to_remove=["x"]))
    )
    with pytest.raises(ConfigError, match="FlattenObservations` with `keys_to_remove`"):
        config.build_algo()


def test_missing_names_raise_import_errors_only_for_rllib_names():
    import scalerl.connectors.env_to_module as e2m

    assert not hasattr(e2m, "SomethingElse")
    with pytest.raises(ImportError, match="PrevActionsPrevRewards"):
        e2m.PrevActionsPrevRewards  # noqa: B018


def test_n_step_ranges_and_buffer_names():
    rng = np.random.default_rng(0)
    draws = {draw_n_step((2, 4), rng) for _ in range(100)}
    assert draws == {2, 3, 4} and draw_n_step(3, rng) == 3
    assert buffer_kind({"type": "PrioritizedEpisodeReplayBuffer"}, "uniform") == "prioritized"
    assert buffer_kind({}, "uniform") == "uniform"
    for bad in ((3, 2), (0, 2), (1, 2, 3), (1.0, 2)):
        with pytest.raises(ConfigError, match="n_step"):
            DQNConfig().environment("CartPole-v1").training(n_step=bad).validate()


def test_resources_settings_shape_a_tune_trials_bundles():
    from scalerl.tune.trainable import trial_bundles

    config = PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
    config.resources(num_cpus_for_main_process=2, custom_resources_for_main_process={"x": 1})
    assert trial_bundles(config) == [{"CPU": 2, "x": 1}, {"CPU": 1}, {"CPU": 1}]
