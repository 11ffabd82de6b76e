"""AlgorithmConfig / PPOConfig: validation errors that name the fix, and serialization."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest

from scalerl.algorithms.ppo import PPO, PPOConfig
from scalerl.utils.errors import ConfigError, EnvError
from scalerl.utils.schedules import Scheduler

# Tiny batches keep every build/sample in these tests fast.
SMALL = dict(train_batch_size=64, minibatch_size=32, num_epochs=1)


def base_config() -> PPOConfig:
    return PPOConfig().environment("CartPole-v1").training(**SMALL).debugging(seed=0)


def raises_config_error(*fragments: str):
    """pytest.raises(ConfigError) whose message contains every fragment verbatim."""
    return pytest.raises(
        ConfigError, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    )


class SomeGymEnv(gym.Env):
    """A small valid env defined in the test module (importable by `module:QualName`)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(3, 0.1 * self.t, np.float32), 1.0, self.t >= 5, False, {}


class WrongObsShapeEnv(SomeGymEnv):
    """Declares a (3,) observation space but returns (2,) observations from reset()."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}


class WrongStepObsEnv(SomeGymEnv):
    """reset() is fine, step() returns (4,) observations."""

    def step(self, action):
        return np.zeros(4, np.float32), 1.0, False, False, {}


def make_some_env(env_config):
    """A module-level env creator function (config.environment(env=creator))."""
    return SomeGymEnv(env_config)


# -- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, suggestion",
    [("lrr", "lr"), ("num_epoch", "num_epochs"), ("gama", "gamma"), ("clip_parm", "clip_param")],
)
def test_unknown_training_key_suggests_nearest(bad, suggestion):
    with raises_config_error(f"`{bad}`", f"Did you mean `{suggestion}`?"):
        PPOConfig().training(**{bad: 1})


def test_unknown_key_in_other_sections():
    with raises_config_error("`num_env_runner`", "Did you mean `num_env_runners`?"):
        PPOConfig().env_runners(num_env_runner=2)
    with raises_config_error("`env_conf`", "Did you mean `env_config`?"):
        PPOConfig().environment("CartPole-v1", env_conf={})


def test_unknown_key_in_from_dict_suggests_nearest():
    with raises_config_error("from_dict", "`lrr`", "Did you mean `lr`?"):
        PPOConfig.from_dict({"lrr": 0.1})
    with raises_config_error("`num_epoch`", "Did you mean `num_epochs`?"):
        PPOConfig.from_dict({**PPOConfig().to_dict(), "num_epoch": 3})


def test_builder_methods_are_fluent():
    cfg = PPOConfig()
    assert cfg.training(lr=1e-3) is cfg
    assert cfg.environment("CartPole-v1") is cfg
    assert cfg.lr == 1e-3 and cfg.env == "CartPole-v1"


# -- invalid values ----------------------------------------------------------------------------


def test_framework_tf2_error_mentions_torch():
    cfg = base_config().framework("tf2")
    with raises_config_error("tf2", "torch"):
        cfg.validate()
    with raises_config_error("torch"):
        cfg.build_algo()


def test_torch_framework_is_fine():
    base_config().framework("torch").validate()


def test_negative_num_env_runners():
    with raises_config_error("num_env_runners", "-1"):
        base_config().env_runners(num_env_runners=-1).validate()


@pytest.mark.parametrize("gamma", [1.5, -0.1])
def test_gamma_out_of_range(gamma):
    with raises_config_error("gamma", str(gamma)):
        base_config().training(gamma=gamma).validate()


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("training", "lambda_", "0.95"),
        ("training", "clip_param", None),
        ("training", "kl_coeff", None),
        ("training", "vf_clip_param", "10"),
        ("learners", "num_gpus_per_learner", None),
    ],
)
def test_non_numeric_values_raise_config_error_naming_setting(section, key, value):
    # validate() promises a ConfigError naming the setting, not a TypeError from a comparison.
    cfg = getattr(base_config(), section)(**{key: value})
    with raises_config_error(f"`{key}`"):
        cfg.validate()


def test_minibatch_larger_than_train_batch():
    with raises_config_error("minibatch_size", "256", "128"):
        base_config().training(train_batch_size=128, minibatch_size=256).validate()


def test_bad_evaluation_duration_unit_with_suggestion():
    with raises_config_error("evaluation_duration_unit", "Did you mean `episodes`?"):
        base_config().evaluation(evaluation_duration_unit="episode").validate()


def test_bad_fcnet_activation_with_suggestion():
    with raises_config_error("fcnet_activation", "rellu", "Did you mean `relu`?"):
        base_config().rl_module(model_config={"fcnet_activation": "rellu"}).validate()


def test_unknown_model_config_key_with_suggestion():
    with raises_config_error("fcnet_hidden", "Did you mean `fcnet_hiddens`?"):
        base_config().rl_module(model_config={"fcnet_hidden": [8]}).validate()


def test_bad_evaluation_config_key_with_suggestion():
    with raises_config_error("`explor`", "Did you mean `explore`?"):
        base_config().evaluation(evaluation_config={"explor": False}).validate()


@pytest.mark.parametrize("env_id", ["CartPole-v2", "CartPol-v1"])
def test_unknown_env_id_suggests_nearest_at_build(env_id):
    cfg = PPOConfig().environment(env_id).training(**SMALL)
    cfg.validate()  # the id is resolved when the algorithm is built
    with raises_config_error(f"`{env_id}`", "Did you mean `CartPole-v1`?"):
        cfg.build_algo()


def test_lr_schedule_validation():
    ok = [[0, 1e-3], [1000, 1e-4]]
    cfg = base_config().training(lr=ok)
    cfg.validate()
    sched = Scheduler(ok)
    assert sched.value(0) == pytest.approx(1e-3)
    assert sched.value(500) == pytest.approx(5.5e-4)
    assert sched.value(10_000) == pytest.approx(1e-4)
    for bad in ([[100, 1e-3], [200, 1e-4]], [[0, 1e-3], [200, 1e-4], [100, 1e-5]], []):
        with raises_config_error("`lr`", "timestep 0"):
            base_config().training(lr=bad).validate()
    for bad in ("fast", [[0]], None):
        with raises_config_error("`lr`", "[timestep, value]"):
            base_config().training(lr=bad).validate()


def test_entropy_coeff_schedule_validation():
    base_config().training(entropy_coeff=[[0, 0.01], [1000, 0.0]]).validate()
    with raises_config_error("`entropy_coeff`"):
        base_config().training(entropy_coeff=[[5, 0.01]]).validate()


# -- serialization -----------------------------------------------------------------------------


def full_config() -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1", env_config={"render_mode": None}, clip_rewards=5.0)
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=32)
        .training(
            lr=[[0, 1e-3], [1000, 1e-4]],
            gamma=0.97,
            train_batch_size=128,
            minibatch_size=32,
            num_epochs=3,
            lambda_=0.9,
            vf_clip_param=10.0,
            entropy_coeff=0.01,
            use_kl_loss=True,
        )
        .evaluation(
            evaluation_interval=2,
            evaluation_duration=3,
            evaluation_config=PPOConfig.overrides(explore=False),
        )
        .rl_module(model_config={"fcnet_hiddens": [32, 16], "fcnet_activation": "relu"})
        .debugging(seed=7)
    )


def test_to_dict_from_dict_round_trip():
    cfg = full_config()
    d = cfg.to_dict()
    assert d["lr"] == [[0, 1e-3], [1000, 1e-4]]
    assert d["framework"] == "torch"
    # Checkpoints store it as JSON: plain data only.
    d_json = json.loads(json.dumps(d))
    restored = PPOConfig.from_dict(d_json)
    assert restored.to_dict() == d
    assert restored.lambda_ == 0.9 and restored.seed == 7
    assert restored.model_config == {"fcnet_hiddens": [32, 16], "fcnet_activation": "relu"}
    restored.validate()


def test_from_dict_of_defaults_equals_defaults():
    d = PPOConfig().to_dict()
    assert PPOConfig.from_dict(d).to_dict() == d


def test_from_dict_accepts_ignored_rllib_settings():
    cfg = PPOConfig.from_dict({"enable_rl_module_and_learner": True, "lr": 0.01})
    assert cfg.lr == 0.01


def test_spaces_round_trip():
    obs = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)
    act = gym.spaces.Discrete(4)
    d = PPOConfig().environment("CartPole-v1", observation_space=obs, action_space=act).to_dict()
    restored = PPOConfig.from_dict(json.loads(json.dumps(d)))
    assert restored.observation_space == obs
    assert restored.action_space == act
    assert restored.to_dict() == d


def test_env_class_round_trip():
    cfg = PPOConfig().environment(env=SomeGymEnv).training(**SMALL)
    d = cfg.to_dict()
    assert d["env"] == {"__callable__": f"{SomeGymEnv.__module__}:SomeGymEnv"}
    restored = PPOConfig.from_dict(json.loads(json.dumps(d)))
    assert restored.env is SomeGymEnv
    assert restored.to_dict() == d
    algo = restored.build_algo()
    try:
        assert algo.get_module().observation_space == SomeGymEnv.observation_space
    finally:
        algo.stop()


def test_env_creator_function_round_trip():
    # `environment(env=...)` accepts a creator function; a checkpoint of such a config
    # must restore it (to_dict stores it as `module:qualname`).
    cfg = PPOConfig().environment(env=make_some_env).training(**SMALL)
    d = cfg.to_dict()
    assert d["env"] == {"__callable__": f"{make_some_env.__module__}:make_some_env"}
    restored = PPOConfig.from_dict(json.loads(json.dumps(d)))
    assert restored.env is make_some_env
    assert restored.to_dict() == d


def test_copy_is_independent():
    cfg = full_config()
    before = cfg.to_dict()
    other = cfg.copy()
    assert other is not cfg
    assert other.to_dict() == before
    other.training(lr=0.5, gamma=0.5)
    other.env_config["extra"] = 1
    other.model_config["fcnet_hiddens"].append(8)
    other.evaluation_config["explore"] = True
    assert cfg.to_dict() == before


def test_build_algo_does_not_alias_config():
    cfg = base_config()
    algo = cfg.build_algo()
    try:
        cfg.training(lr=0.123)
        assert algo.config.lr != 0.123
    finally:
        algo.stop()


def test_build_is_alias_of_build_algo():
    cfg = base_config()
    algo = cfg.build()
    try:
        assert isinstance(algo, PPO)
        assert algo.config.to_dict() == cfg.to_dict()
    finally:
        algo.stop()


# -- env checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("env_cls", [WrongObsShapeEnv, WrongStepObsEnv])
def test_env_obs_not_matching_space_raises_env_error_naming_env(env_cls):
    algo = PPOConfig().environment(env=env_cls).training(**SMALL).build_algo()
    try:
        with pytest.raises(EnvError, match=env_cls.__name__) as info:
            algo.train()
        assert "observation" in str(info.value)
    finally:
        algo.stop()


def test_default_model_config_dataclass_and_rllib_import_paths():
    # RLlib's module paths, with `ray.rllib` replaced by `scalerl`.
    from scalerl.core.columns import Columns
    from scalerl.core.rl_module.default_model_config import DefaultModelConfig
    from scalerl.core.rl_module.rl_module import RLModule, RLModuleSpec

    assert Columns.OBS == "obs" and RLModule and RLModuleSpec
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="relu"))
        .build_algo()
    )
    assert algo.config.model_config["fcnet_hiddens"] == [32]
    assert algo.get_module().pi_encoder.layers[0].out_features == 32
    assert algo.config.to_dict()["model_config"]["fcnet_activation"] == "relu"
    algo.stop()
