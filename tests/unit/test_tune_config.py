"""Ray Tune without a Ray cluster: search spaces in a config survive `to_dict()`, Tune's
resolved dict turns back into the config, trial resources, the names Tune resolves, and
envs registered with `ray.tune.register_env`."""

import json

import gymnasium as gym
import pytest
from ray import cloudpickle, tune
from ray.tune.impl.tuner_internal import TunerInternal
from ray.tune.registry import ENV_CREATOR, TRAINABLE_CLASS, _global_registry, get_trainable_cls
from ray.tune.search.variant_generator import generate_variants

import scalerl
from scalerl.algorithms.apex_dqn import APEXDQN
from scalerl.algorithms.ppo import PPO, PPOConfig
from scalerl.algorithms.registry import ALGORITHM_NAMES, get_algorithm_class
from scalerl.env.registry import EnvContext, get_env_creator, is_registered_env
from scalerl.tune import (
    config_from_tune,
    param_space_dict,
    scalerl_trainable,
    trainable_for,
    trial_bundles,
)
from scalerl.utils.errors import ConfigError


def search_config() -> PPOConfig:
    return (
        PPOConfig()
        .environment(tune.grid_search(["CartPole-v1", "Acrobot-v1"]), env_config={})
        .training(
            lr=tune.grid_search([1e-3, 3e-4]),
            gamma=tune.uniform(0.9, 0.99),
        )
        .rl_module(
            model_config={"fcnet_hiddens": tune.choice([[16], [32, 32]]), "vf_share_layers": True}
        )
    )


def test_search_spaces_stay_in_to_dict_and_resolved_dicts_round_trip():
    config = search_config()
    stored = config.to_dict()
    assert stored["env"] == {"grid_search": ["CartPole-v1", "Acrobot-v1"]}
    assert stored["lr"] == {"grid_search": [1e-3, 3e-4]}
    assert isinstance(stored["gamma"], tune.search.sample.Float)
    assert isinstance(stored["model_config"]["fcnet_hiddens"], tune.search.sample.Categorical)
    assert config.lr == {"grid_search": [1e-3, 3e-4]}  # the config itself is untouched

    variants = [spec for _, spec in generate_variants(stored)]
    assert len(variants) == 4
    seen = set()
    for spec in variants:
        resolved = config_from_tune(PPO, spec)
        resolved.validate()
        assert resolved.env in ("CartPole-v1", "Acrobot-v1")
        assert resolved.lr in (1e-3, 3e-4) and 0.9 <= resolved.gamma <= 0.99
        assert resolved.model_config["fcnet_hiddens"] in ([16], [32, 32])
        assert resolved.model_config["vf_share_layers"] is True
        assert resolved.to_dict() == spec  # every setting, resolved, round-trips
        seen.add((resolved.env, resolved.lr))
    assert len(seen) == 4


def test_an_unresolved_search_space_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"`model_config` .*search space at `fcnet_hiddens`"):
        config_from_tune(
            PPO, search_config().to_dict() | {"env": "CartPole-v1", "lr": 1e-3, "gamma": 0.9}
        )
    with pytest.raises(ConfigError, match="`num_epoch`.*num_epochs"):
        config_from_tune(PPO, {"num_epoch": 2})
    # Tune's own keys in a trial config are not settings.
    cfg = config_from_tune(PPO, {"lr": 0.5, "__trial_info__": object()})
    assert cfg.lr == 0.5


def test_trial_resources_cover_driver_runners_and_learners():
    config = (
        PPOConfig()
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .evaluation(evaluation_num_env_runners=1)
        .learners(num_learners=2, num_cpus_per_learner=2)
    )
    assert trial_bundles(config) == [{"CPU": 1}] + [{"CPU": 0.5}] * 3 + [{"CPU": 2}] * 2
    pgf = trainable_for(PPO).default_resource_request(config.to_dict())
    assert pgf.bundles == trial_bundles(config) and pgf.strategy == "PACK"
    # The local learner's GPU goes to the driver's bundle; CPU-less runners need none.
    local = PPOConfig().learners(num_gpus_per_learner=1).env_runners(num_cpus_per_env_runner=0)
    assert trial_bundles(local.env_runners(num_env_runners=3)) == [{"CPU": 1, "GPU": 1}]


def test_scalerl_names_and_classes_resolve_to_scalerl_trainables():
    # Tune's registry lives in the Ray session: an earlier test's `ray.shutdown()` empties
    # it, and each Tuner given an scalerl trainable registers the names again.
    TunerInternal._convert_trainable(None, "PPO")
    ppo = trainable_for(PPO)
    assert ppo is trainable_for("PPO") and ppo.__name__ == "PPO"
    assert ppo.algorithm_class() is PPO
    assert trainable_for("APEX-DQN") is trainable_for(APEXDQN) is trainable_for("APEX")
    assert get_trainable_cls("PPO") is ppo  # Tune's registry holds scalerl's
    assert get_trainable_cls("APEX-DQN") is trainable_for(APEXDQN)
    assert cloudpickle.loads(cloudpickle.dumps(ppo)) is ppo  # by name: trials rebuild it
    assert scalerl_trainable("PPO") is ppo and scalerl_trainable(PPO) is ppo
    assert scalerl_trainable("MyTrainable") == "MyTrainable"

    class MyPPO(PPO):
        pass

    mine = trainable_for(MyPPO)
    assert mine.algorithm_class() is MyPPO and mine is not ppo
    assert cloudpickle.loads(cloudpickle.dumps(mine)).algorithm_class() is MyPPO
    with pytest.raises(ConfigError, match="Unknown algorithm `PP0`"):
        trainable_for("PP0")
    with pytest.raises(ConfigError, match="not an scalerl Algorithm class"):
        trainable_for(dict)


def test_tuner_takes_scalerl_classes_names_and_configs(tmp_path):
    config = PPOConfig().environment("CartPole-v1")
    run_config = tune.RunConfig(storage_path=str(tmp_path))
    for trainable, space in [("PPO", config), (PPO, config.to_dict()), (config.algo_class, config)]:
        tuner = tune.Tuner(trainable, param_space=space, run_config=run_config)
        assert tuner._local_tuner.converted_trainable is trainable_for(PPO)
        assert tuner._local_tuner.param_space == config.to_dict()


def test_envs_registered_with_ray_tune_are_found():
    def creator(env_config):
        return gym.make("CartPole-v1", max_episode_steps=env_config.get("steps", 500))

    tune.register_env("scalerl-tune-unit-env", creator)
    try:
        assert is_registered_env("scalerl-tune-unit-env")
        env = get_env_creator("scalerl-tune-unit-env")(EnvContext({"steps": 7}))
        assert env.spec.max_episode_steps == 7
        algo = PPOConfig().environment("scalerl-tune-unit-env").build_algo()
        assert algo.get_module().observation_space.shape == (4,)
        algo.stop()
    finally:
        _global_registry.unregister(ENV_CREATOR, "scalerl-tune-unit-env")
    assert not is_registered_env("scalerl-tune-unit-env")
    # scalerl's own names are shared with Tune, whose registry the trials read.
    scalerl.register_env("scalerl-unit-env-for-tune", creator)
    try:
        assert _global_registry.contains(ENV_CREATOR, "scalerl-unit-env-for-tune")
    finally:
        _global_registry.unregister(ENV_CREATOR, "scalerl-unit-env-for-tune")


class ShortCartPole(gym.Wrapper):
    """An env class given to the config as an object."""

    def __init__(self, env_config):
        super().__init__(gym.make("CartPole-v1", max_episode_steps=5))


def test_the_param_space_carries_classes_and_functions_to_the_trials(tmp_path):
    """`param_space=config` sends the config's classes and functions along (Ray pickles
    them to the trial); `to_dict()` itself stays plain JSON names."""

    def mark(*, result, **kwargs):
        result["marked"] = True

    config = PPOConfig().environment(ShortCartPole).callbacks(on_train_result=mark)
    plain = config.to_dict()
    assert type(plain["env"]["__callable__"]) is str
    space = param_space_dict(config)
    assert space == plain  # the same names, as strings
    assert json.loads(json.dumps(space)) == plain
    sent = cloudpickle.loads(cloudpickle.dumps(space))
    trial_config = config_from_tune(PPO, sent)
    assert trial_config.env is ShortCartPole
    assert trial_config.callbacks_on_train_result.__name__ == "mark"  # a local function
    # From a plain dict a local function cannot be found by name: the error says what to do.
    with pytest.raises(ConfigError, match="lambda or local function.*\n.*Ray Tune trial"):
        config_from_tune(PPO, plain)
    unknown = {"env": {"__callable__": "elsewhere.envs:SomeEnv"}}
    with pytest.raises(ConfigError, match="pass the config object itself as `param_space`"):
        config_from_tune(PPO, unknown)
    tuner = tune.Tuner(
        "PPO", param_space=config, run_config=tune.RunConfig(storage_path=str(tmp_path))
    )
    assert tuner._local_tuner.param_space["env"]["__callable__"].obj is ShortCartPole


def test_an_scalerl_config_given_to_rllib_is_refused(tmp_path):
    class RLlibPPO(tune.Trainable):
        pass

    RLlibPPO.__module__ = "ray.rllib.algorithms.ppo.ppo"  # as RLlib's registry holds it
    run_config = tune.RunConfig(storage_path=str(tmp_path))
    with pytest.raises(ConfigError, match="trainable .*RLlibPPO.* is RLlib's RLlibPPO"):
        tune.Tuner(RLlibPPO, param_space=PPOConfig(), run_config=run_config)
    tune.register_trainable("rllib-style-name", RLlibPPO)
    try:
        with pytest.raises(ConfigError, match="'rllib-style-name' is RLlib's.*PPO, PG"):
            tune.Tuner("rllib-style-name", param_space=PPOConfig(), run_config=run_config)
    finally:
        _global_registry.unregister(TRAINABLE_CLASS, "rllib-style-name")
    assert not list(tmp_path.iterdir())  # refused before Tune wrote anything


@pytest.mark.parametrize("name", ALGORITHM_NAMES)
def test_every_algorithm_round_trips_and_asks_for_its_resources(name):
    trainable = trainable_for(name)
    algo_class = get_algorithm_class(name)
    assert trainable.algorithm_class() is algo_class
    stored = algo_class.get_default_config().environment("CartPole-v1").to_dict()
    assert config_from_tune(algo_class, stored).to_dict() == stored
    runners = 2 if algo_class.needs_env_runners else 0
    stored = stored | {"num_env_runners": runners, "num_cpus_per_env_runner": 0.5}
    bundles = trainable.default_resource_request(stored).bundles
    assert bundles == [{"CPU": 1}] + [{"CPU": 0.5}] * runners
