"""Numeric settings are refused unless finite and in range (ConfigError naming the setting)."""

from __future__ import annotations

import math

import pytest

from scalerl.algorithms.apex_dqn import APEXDQNConfig
from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.r2d2 import R2D2Config
from scalerl.algorithms.sac import SACConfig
from scalerl.utils.errors import ConfigError
from scalerl.utils.schedules import validate_schedule

NAN, INF = float("nan"), float("inf")


def refused(config, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config.validate()


@pytest.mark.parametrize("lr", [NAN, INF, -INF, -1e-3, 0.0, 0])
def test_lr_must_be_positive_and_finite(lr):
    refused(PPOConfig().environment("CartPole-v1").training(lr=lr), "`lr`")
    refused(DQNConfig().environment("CartPole-v1").training(lr=lr), "`lr`")


@pytest.mark.parametrize(
    "schedule",
    [
        [[0, 1e-3], [1000, NAN]],
        [[0, 1e-3], [1000, -1e-4]],
        [[0, 0.0], [1000, 1e-3]],  # the first value must be > 0
        [[0, 1e-3], [1000, 0.0], [2000, 1e-3]],  # only the last may be 0
        [[0, 1e-3], [INF, 1e-4]],
    ],
)
def test_lr_schedule_values(schedule):
    refused(PPOConfig().environment("CartPole-v1").training(lr=schedule), "`lr` schedule")


def test_lr_schedule_may_decay_to_zero():
    PPOConfig().environment("CartPole-v1").training(lr=[[0, 3e-4], [10_000, 0.0]]).validate()


@pytest.mark.parametrize("name", ["actor_lr", "critic_lr", "alpha_lr"])
@pytest.mark.parametrize("value", [NAN, -1.0, 0.0, [[0, 1e-3], [10, NAN]]])
def test_sac_learning_rates(name, value):
    refused(SACConfig().environment("Pendulum-v1").training(**{name: value}), f"`{name}")


@pytest.mark.parametrize("name", ["vf_loss_coeff", "kl_coeff", "entropy_coeff"])
@pytest.mark.parametrize("value", [-0.1, NAN, INF])
def test_ppo_loss_coefficients(name, value):
    refused(PPOConfig().environment("CartPole-v1").training(**{name: value}), f"`{name}")


def test_entropy_coeff_schedule_must_stay_non_negative():
    config = PPOConfig().environment("CartPole-v1").training(entropy_coeff=[[0, 0.01], [10, -1]])
    refused(config, "`entropy_coeff` schedule")


@pytest.mark.parametrize(
    "config, match",
    [
        (PPOConfig().training(gamma=NAN), "`gamma`"),
        (PPOConfig().training(lambda_=NAN), "`lambda_`"),
        (PPOConfig().training(clip_param=NAN), "`clip_param`"),
        (PPOConfig().training(kl_target=INF), "`kl_target`"),
        (PPOConfig().training(grad_clip=NAN), "`grad_clip`"),
        (PPOConfig().training(grad_clip=INF), "`grad_clip`"),
        (PPOConfig().training(vf_clip_param=INF), "`vf_clip_param`"),
        (PPOConfig().environment(clip_rewards=INF), "`clip_rewards`"),
        (PPOConfig().rl_module(model_config={"fcnet_hiddens": [64], "x": NAN}), "model_config"),
        (PPOConfig().evaluation(evaluation_config={"gamma": NAN}), "`evaluation_config"),
        (DQNConfig().training(tau=NAN), "`tau`"),
        (DQNConfig().training(epsilon=[[0, 1.0], [100, 1.5]]), "`epsilon` schedule"),
        (DQNConfig().training(epsilon=NAN), "`epsilon`"),
        (DQNConfig().training(sigma0=-1.0), "`sigma0`"),
        (DQNConfig().training(v_min=10.0, v_max=-10.0), "`v_min`"),
        (DQNConfig().training(training_intensity=NAN), "`training_intensity`"),
        (
            DQNConfig().training(replay_buffer_config={"type": "prioritized", "alpha": NAN}),
            "alpha",
        ),
        (
            DQNConfig().training(replay_buffer_config={"type": "prioritized", "beta": -0.4}),
            "beta",
        ),
        (SACConfig().training(tau=INF), "`tau`"),
        (SACConfig().training(initial_alpha=NAN), "`initial_alpha`"),
        (SACConfig().training(target_entropy=NAN), "`target_entropy`"),
        (R2D2Config().training(h_function_epsilon=NAN), "`h_function_epsilon`"),
        (APEXDQNConfig().env_runners(num_env_runners=2).training(apex_epsilon=NAN), "apex"),
        (
            APEXDQNConfig().env_runners(num_env_runners=2).training(apex_epsilon_alpha=-1.0),
            "`apex_epsilon_alpha`",
        ),
    ],
)
def test_non_finite_and_out_of_range_settings(config, match):
    env = "Pendulum-v1" if isinstance(config, SACConfig) else "CartPole-v1"
    refused(config.environment(env), match)


def test_env_config_and_space_bounds_may_hold_inf():
    PPOConfig().environment("CartPole-v1", env_config={"limit": INF}).validate()


def test_check_settings():
    config = PPOConfig().environment("CartPole-v1")
    refused(config.copy().environment(on_nonfinite="skip"), "`on_nonfinite`")
    refused(config.copy().environment(check_env_steps="yes"), "`check_env_steps`")
    refused(
        config.copy().environment(check_env_steps=False, on_nonfinite="drop"),
        "needs the per-step checks",
    )
    config.copy().environment(on_nonfinite="drop").validate()


def test_validate_schedule_messages():
    with pytest.raises(ConfigError, match=r"`lr` must be > 0, got 0"):
        validate_schedule("lr", 0, positive=True)
    with pytest.raises(ConfigError, match=r"`x` must be a finite number, got nan"):
        validate_schedule("x", math.nan)
    with pytest.raises(ConfigError, match=r"`x` must be >= 0"):
        validate_schedule("x", -1, minimum=0.0)
    validate_schedule("x", [[0, 1.0], [10, 0.5]], minimum=0.0, maximum=1.0)
