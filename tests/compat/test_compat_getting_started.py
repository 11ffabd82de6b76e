"""RLlib's getting-started documentation, with `scalerl` in place of `ray.rllib`.

Each test makes the API calls of the RLlib file named in its docstring (paths in the
ray-project/ray repository), written anew for scalerl. Counts of Ray EnvRunners and
training iterations are lowered so that each test runs locally in a few seconds.
"""

from __future__ import annotations

from pathlib import Path
from pprint import pformat

import gymnasium as gym
import numpy as np
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.columns import Columns
from scalerl.core.rl_module import RLModule
from scalerl.core.rl_module.default_model_config import DefaultModelConfig
from scalerl.core.rl_module.rl_module import RLModuleSpec
from scalerl.core.rl_module.torch import TorchRLModule


def test_rllib_in_60_seconds():
    """Mirrors doc/source/rllib/doc_code/rllib_in_60s.py: configure PPO on Taxi-v3 with a
    DefaultModelConfig, build, train, evaluate (runners: 0 instead of 2 and 1)."""
    config = (
        PPOConfig()
        .environment("Taxi-v4")  # Gymnasium 1.4 ships Taxi-v4, not v3
        .env_runners(num_env_runners=0)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
        .evaluation(evaluation_num_env_runners=0, evaluation_duration=2)
        .training(train_batch_size=1000)
    )
    algo = config.build()
    result = algo.train()
    evaluation = algo.evaluate()
    algo.stop()
    assert result["training_iteration"] == 1
    assert result["env_runners"]["num_env_steps_sampled"] == 1000
    assert evaluation["env_runners"]["num_episodes"] == 2
    assert algo.get_module().model_config["fcnet_hiddens"] == [64, 64]


def test_getting_started_train_checkpoint_evaluate_and_deploy(tmp_path):
    """Mirrors doc/source/rllib/getting-started.rst ("RLlib in 60 minutes"): PPO on
    Pendulum-v1 with `training(lr, train_batch_size_per_learner, num_epochs)`, `train()`,
    `save_to_path()`, `evaluation(...)` then `config.build()`, and the deployment part:
    `RLModule.from_checkpoint(<ckpt>/learner_group/learner/rl_module)["default_policy"]`
    and `forward_inference` in an env loop."""
    config = PPOConfig().environment("Pendulum-v1")
    config.env_runners(num_env_runners=0)
    config.training(lr=0.0002, train_batch_size_per_learner=1000, num_epochs=2)
    ppo = config.build_algo()
    assert "env_runners" in pformat(ppo.train())
    checkpoint_path = ppo.save_to_path(tmp_path / "ckpt")
    ppo.stop()
    config.evaluation(
        evaluation_interval=1,
        evaluation_num_env_runners=0,
        evaluation_duration_unit="episodes",
        evaluation_duration=2,
    )
    ppo_with_evaluation = config.build()
    result = ppo_with_evaluation.train()
    assert result["evaluation"]["env_runners"]["num_episodes"] == 2
    assert ppo_with_evaluation.get_module("default_policy") is not None
    ppo_with_evaluation.stop()

    rl_module = RLModule.from_checkpoint(
        Path(checkpoint_path) / "learner_group" / "learner" / "rl_module"
    )["default_policy"]
    env = gym.make("Pendulum-v1")
    obs, info = env.reset(seed=0)
    episode_return, done = 0.0, False
    while not done:
        obs_batch = torch.from_numpy(obs).unsqueeze(0)
        model_outputs = rl_module.forward_inference({"obs": obs_batch})
        mean = model_outputs["action_dist_inputs"][0][:1].detach().numpy()
        obs, reward, terminated, truncated, info = env.step(np.clip(mean, -2.0, 2.0))
        episode_return += reward
        done = terminated or truncated
    assert -2000.0 < episode_return < 0.0


class EchoEnv(gym.Env):
    """Rewards actions that repeat the observation (like the docs' custom env)."""

    def __init__(self, config=None):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = self.observation_space
        self.t = 0
        self.target = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.target = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.target, {}

    def step(self, action):
        self.t += 1
        reward = -float(np.abs(self.target - action).sum())
        self.target = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.target, reward, self.t >= 10, False, {}


def test_getting_started_custom_env_class():
    """Mirrors doc/source/rllib/getting-started.rst ("Quickstart: Custom RL environment"):
    a `gymnasium.Env` subclass passed to `.environment(EnvClass)`, then `build_algo()` and
    `train()`."""
    config = PPOConfig().environment(EchoEnv).training(train_batch_size=500)
    ppo_w_custom_env = config.build_algo()
    result = ppo_w_custom_env.train()
    ppo_w_custom_env.stop()
    assert result["env_runners"]["num_episodes"] == 50  # 10-step episodes
    assert result["env_runners"]["episode_return_mean"] < 0.0


class TinyPolicy(TorchRLModule):
    """A policy net from `model_config["hidden_dim"]`."""

    def setup(self):
        hidden_dim = self.model_config["hidden_dim"]
        self._policy_net = torch.nn.Sequential(
            torch.nn.Linear(self.observation_space.shape[0], hidden_dim),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden_dim, self.action_space.n),
        )

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self._policy_net(batch[Columns.OBS])}


def test_getting_started_custom_torch_rl_module():
    """Mirrors doc/source/rllib/getting-started.rst ("Quickstart: Custom RLModule"): a
    `TorchRLModule` subclass with `setup()` and `_forward()` reading `self.model_config`,
    built from an `RLModuleSpec` and called per phase."""
    env = gym.make("CartPole-v1")
    spec = RLModuleSpec(
        module_class=TinyPolicy,
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"hidden_dim": 16},
    )
    module = spec.build()
    obs = torch.from_numpy(env.reset(seed=0)[0]).unsqueeze(0)
    for forward in (module.forward_inference, module.forward_exploration, module.forward_train):
        assert forward({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].shape == (1, 2)
    assert isinstance(module, torch.nn.Module)


def test_doc_code_checkpoints_convert_to_msgpack(tmp_path):
    """Mirrors doc/source/rllib/doc_code/checkpoints.py: `algo.save(checkpoint_dir=...)`,
    `convert_to_msgpack_checkpoint(src, dst)`, `Algorithm.from_checkpoint(dst)`."""
    from scalerl.utils.checkpoints import convert_to_msgpack_checkpoint

    config = PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
    algo1 = config.training(train_batch_size=256).build()
    algo1.train()
    algo1.save(checkpoint_dir=tmp_path / "pickle_cp")
    convert_to_msgpack_checkpoint(tmp_path / "pickle_cp", tmp_path / "msgpack_cp")
    algo2 = Algorithm.from_checkpoint(tmp_path / "msgpack_cp")
    for name, value in algo1.get_module().get_state().items():
        assert torch.equal(value, algo2.get_module().get_state()[name])
    assert algo2.training_iteration == 1
    algo1.stop()
    algo2.stop()
