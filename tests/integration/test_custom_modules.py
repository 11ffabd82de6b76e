"""Custom RLModules with PPO: the value API contract, and modules that return actions.

(Checkpoint round trips of a custom module run in `test_examples.py`, through the
`examples/custom_module.py` script.)
"""

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.rl_module import Columns, RLModule, RLModuleSpec, ValueFunctionAPI
from scalerl.utils.errors import ConfigError


class PolicyOnly(RLModule):
    """Logits from a linear layer; no value function."""

    def setup(self) -> None:
        self.pi = nn.Linear(self.observation_space.shape[0], self.action_space.n)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.pi(batch[Columns.OBS])}


class WithValues(PolicyOnly, ValueFunctionAPI):
    """Adds V(s) through `compute_values` only: `_forward_train` returns no VF_PREDS."""

    def setup(self) -> None:
        super().setup()
        self.vf = nn.Linear(self.observation_space.shape[0], 1)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.vf(batch[Columns.OBS]).squeeze(-1)


class FixedActions(WithValues):
    """Returns `Columns.ACTIONS` itself: always action 1 when exploring, 0 in inference,
    whatever the (uniform) distribution inputs say."""

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits = self.pi(batch[Columns.OBS])
        ones = torch.ones(logits.shape[0], dtype=torch.int64)
        return {Columns.ACTIONS: ones, Columns.ACTION_DIST_INPUTS: torch.zeros_like(logits)}

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits = self.pi(batch[Columns.OBS])
        zeros = torch.zeros(logits.shape[0], dtype=torch.int64)
        return {Columns.ACTIONS: zeros, Columns.ACTION_DIST_INPUTS: logits}


def config(module_class: type[RLModule]) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=200, minibatch_size=50, num_epochs=2)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=module_class))
        .debugging(seed=0)
    )


def test_module_without_value_function_is_a_config_error():
    with pytest.raises(ConfigError, match="PolicyOnly.*compute_values.*ValueFunctionAPI"):
        config(PolicyOnly).build_algo()


def test_values_from_compute_values_train_the_value_head():
    algo = config(WithValues).build_algo()
    module = algo.get_module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = algo.train()
    after = module.state_dict()
    assert not torch.equal(before["vf.weight"], after["vf.weight"])
    assert not torch.equal(before["pi.weight"], after["pi.weight"])
    assert np.isfinite(result["learners"]["default_policy"]["vf_loss"])
    algo.stop()


def test_actions_returned_by_the_module_are_the_ones_taken():
    algo = config(FixedActions).build_algo()
    sampled = []
    update = algo.learner_group.update

    def record(batches, **kwargs):
        sampled.append(batches["default_policy"][Columns.ACTIONS].copy())
        return update(batches, **kwargs)

    algo.learner_group.update = record
    algo.train()
    assert sampled[0].size == 200 and (sampled[0] == 1).all()
    obs = gym.make("CartPole-v1").reset(seed=0)[0]
    assert algo.compute_single_action(obs) == 0
    assert algo.compute_single_action(obs, explore=True) == 1
    assert algo.evaluate()["env_runners"]["episode_return_mean"] < 15  # always pushing left
    algo.stop()


class ActionsOnlyWhenGreedy(WithValues):
    """Inference returns only `Columns.ACTIONS` (no distribution inputs), as RLlib allows."""

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTIONS: self.pi(batch[Columns.OBS]).argmax(-1)}


def test_greedy_actions_without_distribution_inputs_evaluate():
    algo = config(ActionsOnlyWhenGreedy).evaluation(evaluation_duration=2).build_algo()
    assert algo.evaluate()["env_runners"]["num_episodes"] == 2
    assert algo.compute_single_action(np.zeros(4, np.float32)) in (0, 1)
    algo.stop()
