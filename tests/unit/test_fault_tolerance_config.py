"""`config.fault_tolerance(...)`: RLlib's names and defaults, validation, round trip."""

import math

import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.utils.errors import ConfigError


def test_defaults_are_rllibs():
    config = PPOConfig()
    assert config.restart_failed_env_runners is True
    assert config.max_num_env_runner_restarts == 1000
    assert config.delay_between_env_runner_restarts_s == 60.0
    assert config.ignore_env_runner_failures is False
    assert config.restart_failed_sub_environments is False
    assert config.env_runner_health_probe_timeout_s == 30.0
    assert config.env_runner_restore_timeout_s == 1800.0


def test_settings_round_trip_through_to_dict():
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .fault_tolerance(
            restart_failed_env_runners=False,
            max_num_env_runner_restarts=3,
            delay_between_env_runner_restarts_s=0.0,
            ignore_env_runner_failures=True,
            restart_failed_sub_environments=True,
            env_runner_health_probe_timeout_s=1.5,
            env_runner_restore_timeout_s=20.0,
        )
    )
    restored = PPOConfig.from_dict(config.to_dict())
    for key in (
        "restart_failed_env_runners",
        "max_num_env_runner_restarts",
        "delay_between_env_runner_restarts_s",
        "ignore_env_runner_failures",
        "restart_failed_sub_environments",
        "env_runner_health_probe_timeout_s",
        "env_runner_restore_timeout_s",
    ):
        assert getattr(restored, key) == getattr(config, key), key


def test_unknown_setting_suggests_the_rllib_name():
    with pytest.raises(ConfigError, match="restart_failed_env_runners"):
        PPOConfig().fault_tolerance(restart_failed_env_runner=True)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("restart_failed_env_runners", 1),
        ("ignore_env_runner_failures", "yes"),
        ("restart_failed_sub_environments", None),
        ("max_num_env_runner_restarts", -1),
        ("max_num_env_runner_restarts", 2.5),
        ("delay_between_env_runner_restarts_s", -1.0),
        ("env_runner_health_probe_timeout_s", math.nan),
        ("env_runner_restore_timeout_s", math.inf),
        ("env_runner_restore_timeout_s", "60"),
    ],
)
def test_invalid_values_name_the_setting(key, value):
    config = PPOConfig().environment("CartPole-v1").fault_tolerance(**{key: value})
    with pytest.raises(ConfigError, match=key):
        config.validate()


@pytest.mark.parametrize("value", [0, -1.0, math.nan, "10"])
def test_sample_timeout_must_be_positive_or_none(value):
    config = PPOConfig().environment("CartPole-v1").env_runners(sample_timeout_s=value)
    with pytest.raises(ConfigError, match="sample_timeout_s"):
        config.validate()
    config.env_runners(sample_timeout_s=None).validate()
