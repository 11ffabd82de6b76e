"""RLlib's RLModule and checkpoint documentation and examples, with `scalerl` imports.

Each test makes the API calls of the RLlib file named in its docstring (paths in the
ray-project/ray repository), written anew for scalerl.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from scalerl.core import (
    COMPONENT_LEARNER,
    COMPONENT_LEARNER_GROUP,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
)
from scalerl.core.columns import Columns
from scalerl.core.rl_module.apis import ValueFunctionAPI
from scalerl.core.rl_module.default_model_config import DefaultModelConfig
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.core.rl_module.rl_module import RLModule, RLModuleSpec
from scalerl.core.rl_module.torch import TorchRLModule
from scalerl.utils.errors import ConfigError

CARTPOLE = gym.make("CartPole-v1")


def test_rl_module_spec_builds_the_default_ppo_module():
    """Mirrors doc/source/rllib/rl-modules.rst ("Construct RLModule instances"):
    `RLModuleSpec(module_class=DefaultPPOTorchRLModule, observation_space=...,
    action_space=..., model_config=DefaultModelConfig(...)).build()` and the three
    forward methods."""
    spec = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=CARTPOLE.observation_space,
        action_space=CARTPOLE.action_space,
        model_config=DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="relu"),
    )
    module = spec.build()
    obs = torch.randn(5, 4)
    out = module.forward_inference({Columns.OBS: obs})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (5, 2)
    train_out = module.forward_train({Columns.OBS: obs})
    assert train_out[Columns.VF_PREDS].shape == (5,)
    assert module.pi_encoder.layers[0].out_features == 32


def test_multi_rl_module_spec_builds_a_multi_rl_module():
    """Mirrors doc/source/rllib/rl-modules.rst ("MultiRLModuleSpec"): one RLModuleSpec
    per module id, `.build()`, then index the MultiRLModule by module id."""
    spec = MultiRLModuleSpec(
        rl_module_specs={
            "p0": RLModuleSpec(
                module_class=DefaultPPOTorchRLModule,
                observation_space=CARTPOLE.observation_space,
                action_space=CARTPOLE.action_space,
                model_config=DefaultModelConfig(fcnet_hiddens=[16]),
            ),
            "p1": RLModuleSpec(
                module_class=DefaultPPOTorchRLModule,
                observation_space=CARTPOLE.observation_space,
                action_space=CARTPOLE.action_space,
                model_config=DefaultModelConfig(fcnet_hiddens=[8]),
            ),
        },
    )
    multi = spec.build()
    assert sorted(multi.keys()) == ["p0", "p1"]
    assert multi["p1"].pi_encoder.layers[0].out_features == 8


class PolicyWithValue(TorchRLModule, ValueFunctionAPI):
    """A custom actor-critic: one hidden layer of `model_config["hidden"]` units."""

    def setup(self):
        hidden = self.model_config.get("hidden", 32)
        n_in = self.observation_space.shape[0]
        self.pi = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2)
        )
        self.vf = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
        )

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.pi(batch[Columns.OBS])}

    def compute_values(self, batch, embeddings=None):
        return self.vf(batch[Columns.OBS]).squeeze(-1)


def test_custom_rl_module_with_value_function_api_trains_with_ppo():
    """Mirrors doc/source/rllib/rl-modules.rst ("Implementing custom RLModules"): a
    TorchRLModule with `ValueFunctionAPI.compute_values`, plugged in with
    `config.rl_module(rl_module_spec=RLModuleSpec(module_class=..., model_config=...))`."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .rl_module(
            rl_module_spec=RLModuleSpec(module_class=PolicyWithValue, model_config={"hidden": 8})
        )
        .training(train_batch_size=256, minibatch_size=64, num_epochs=2)
    )
    algo = config.build_algo()
    before = {k: v.clone() for k, v in algo.get_module().get_state().items()}
    result = algo.train()
    assert isinstance(algo.get_module(), PolicyWithValue)
    assert result["learners"]["default_policy"]["vf_loss"] >= 0.0
    assert any(not torch.equal(v, algo.get_module().get_state()[k]) for k, v in before.items())
    algo.stop()


def test_rl_module_save_to_path_and_from_checkpoint(tmp_path):
    """Mirrors doc/source/rllib/rl-modules.rst ("Checkpointing RLModules"):
    `module.save_to_path(dir)` and `RLModule.from_checkpoint(dir)` give the same outputs."""
    module = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=CARTPOLE.observation_space,
        action_space=CARTPOLE.action_space,
        model_config=DefaultModelConfig(fcnet_hiddens=[16, 16]),
    ).build()
    module.save_to_path(tmp_path / "module")
    restored = RLModule.from_checkpoint(tmp_path / "module")
    obs = torch.randn(3, 4)
    torch.testing.assert_close(
        restored.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS],
        module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS],
    )


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A PPO CartPole checkpoint after one iteration, and that algorithm's module state."""
    config = PPOConfig().environment("CartPole-v1").training(train_batch_size=256)
    algo = config.build_algo()
    algo.train()
    path = Path(algo.save_to_path(tmp_path_factory.mktemp("ckpt") / "algo"))
    state = algo.get_module().get_state()
    algo.stop()
    return path, state


def test_checkpoints_algorithm_from_checkpoint_continues(trained_checkpoint):
    """Mirrors doc/source/rllib/checkpoints.rst ("Creating a new Algorithm from a
    checkpoint"): `Algorithm.from_checkpoint(path)`, then `train()` continues the counts."""
    path, state = trained_checkpoint
    algo = Algorithm.from_checkpoint(path)
    for name, value in state.items():
        assert torch.equal(algo.get_module().get_state()[name], value)
    assert algo.train()["training_iteration"] == 2
    algo.stop()


def test_checkpoints_restore_only_the_rl_module_component(trained_checkpoint):
    """Mirrors doc/source/rllib/checkpoints.rst ("Restoring a sub-component"):
    `algo.restore_from_path(<ckpt>/learner_group/learner/rl_module/default_policy,
    component="learner_group/learner/rl_module/default_policy")` into a fresh algorithm
    loads the weights and leaves the counters alone."""
    path, state = trained_checkpoint
    algo = PPOConfig().environment("CartPole-v1").training(train_batch_size=256).build_algo()
    component = "/".join(
        [COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID]
    )
    algo.restore_from_path(
        path
        / COMPONENT_LEARNER_GROUP
        / COMPONENT_LEARNER
        / COMPONENT_RL_MODULE
        / DEFAULT_MODULE_ID,
        component=component,
    )
    for name, value in state.items():
        assert torch.equal(algo.get_module().get_state()[name], value)
    assert algo.training_iteration == 0
    with pytest.raises(Exception, match="does not support restoring the component"):
        algo.restore_from_path(path, component="env_runner")
    algo.stop()


def test_checkpoints_rl_module_from_algorithm_checkpoint(trained_checkpoint):
    """Mirrors doc/source/rllib/checkpoints.rst ("Loading an RLModule from an Algorithm
    checkpoint"): `RLModule.from_checkpoint(<ckpt>/learner_group/learner/rl_module/
    default_policy)` and `forward_inference` on a batch."""
    path, state = trained_checkpoint
    module = RLModule.from_checkpoint(
        path / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID
    )
    obs = torch.from_numpy(np.stack([CARTPOLE.observation_space.sample() for _ in range(4)]))
    logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (4, 2)
    assert torch.equal(
        module.get_state()["pi_head.layers.0.weight"], state["pi_head.layers.0.weight"]
    )


def test_mean_std_filtering_example_with_initializers():
    """Mirrors rllib/examples/connectors/mean_std_filtering.py: an env registered by name
    with lopsided observations, `env_to_module_connector=lambda env, spaces, device:
    MeanStdFilter(...)`, `train_batch_size_per_learner`, and a DefaultModelConfig with
    torch.nn.init functions as initializers (`fcnet_bias_initializer_kwargs={"val": ...}`)."""
    from scalerl import register_env
    from scalerl.connectors.env_to_module.mean_std_filter import MeanStdFilter

    class LopsidedPendulum(gym.ObservationWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = gym.spaces.Box(-4000.0, -1456.0, (3,), np.float32)

        def observation(self, observation):
            return (((observation + 1.0) / 2.0) * 2544.0 - 4000.0).astype(np.float32)

    register_env("lopsided-pend", lambda _: LopsidedPendulum(gym.make("Pendulum-v1")))
    config = (
        PPOConfig()
        .environment("lopsided-pend")
        .env_runners(
            num_envs_per_env_runner=4,
            env_to_module_connector=lambda env, spaces, device: MeanStdFilter(multi_agent=False),
        )
        .training(train_batch_size_per_learner=512, gamma=0.95, lr=0.0003, vf_loss_coeff=0.01)
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_activation="relu",
                fcnet_kernel_initializer=torch.nn.init.xavier_uniform_,
                fcnet_bias_initializer=torch.nn.init.constant_,
                fcnet_bias_initializer_kwargs={"val": 0.25},
            ),
        )
        .training(minibatch_size=64, lambda_=0.1, vf_clip_param=10.0)
    )
    algo = config.build_algo()
    bias = algo.get_module().pi_encoder.layers[0].bias
    assert torch.all(bias == 0.25)
    algo.train()
    stats = algo.obs_filter.get_state()
    assert stats is not None and algo.config.observation_filter["type"] == "MeanStdFilter"
    assert algo.config.to_dict()["model_config"]["fcnet_kernel_initializer"] == "xavier_uniform_"
    algo.stop()


def test_default_model_config_head_and_log_std_settings():
    """Mirrors rllib/examples/rl_modules/action_masking_rl_module.py's model config and
    rllib/core/rl_module/default_model_config.py's fields: `head_fcnet_hiddens`,
    `head_fcnet_activation`, `free_log_std`, `log_std_clip_param` in PPO's module, and a
    setting scalerl lacks refused by name."""
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    module = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=box,
        action_space=box,
        model_config=DefaultModelConfig(
            head_fcnet_hiddens=[8],
            head_fcnet_activation="relu",
            free_log_std=False,
            log_std_clip_param=0.5,
            head_fcnet_kernel_initializer="orthogonal_",
            head_fcnet_kernel_initializer_kwargs={"gain": 0.01},
        ),
    ).build()
    assert [layer.out_features for layer in module.pi_head.layers] == [8, 4]
    assert not module.free_log_std
    with torch.no_grad():
        module.pi_head.layers[-1].bias.fill_(5.0)
    inputs = module.forward_inference({Columns.OBS: torch.zeros(3, 2)})[Columns.ACTION_DIST_INPUTS]
    assert torch.all(inputs[:, 2:] <= 0.5)  # log-stds clipped
    config = (
        PPOConfig()
        .environment("Pendulum-v1")
        .rl_module(model_config=DefaultModelConfig(fcnet_use_layernorm=True))
    )
    with pytest.raises(ConfigError, match="fcnet_use_layernorm.*does not support"):
        config.validate()
