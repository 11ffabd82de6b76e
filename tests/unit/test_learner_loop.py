"""The base Learner's update loop: a learner is its loss (`compute_loss_for_module`), the
hand-written fast path is used only for the exact (learner, module) pair it is registered
for, and the update's result keeps its metrics and per-sample arrays."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.dqn.default_dqn_rl_module import DefaultDQNTorchRLModule
from scalerl.algorithms.dqn.dqn_learner import DQNLearner
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.algorithms.ppo.ppo_learner import PPOLearner, ppo_fast_gradient
from scalerl.algorithms.sac import SACConfig
from scalerl.algorithms.sac.default_sac_rl_module import DefaultSACTorchRLModule
from scalerl.algorithms.sac.sac_learner import SACLearner, sac_fast_gradient
from scalerl.core.columns import Columns
from scalerl.core.fast_gradients import registered_fast_gradient
from scalerl.core.learner import Learner
from scalerl.core.optim import Adam
from scalerl.core.rl_module import RLModuleSpec

OBS = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
DISCRETE = gym.spaces.Discrete(2)


def fragment(T: int = 16, N: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """A [T, N] rollout of CartPole-like shapes, as an EnvRunner returns it."""
    rng = np.random.default_rng(seed)
    return {
        Columns.OBS: rng.uniform(-1, 1, (T, N, 4)).astype(np.float32),
        Columns.ACTIONS: rng.integers(0, 2, (T, N)),
        Columns.ACTION_DIST_INPUTS: rng.normal(0, 0.3, (T, N, 2)).astype(np.float32),
        Columns.REWARDS: np.ones((T, N), np.float32),
        Columns.TERMINATEDS: rng.random((T, N)) < 0.1,
        Columns.TRUNCATEDS: np.zeros((T, N), bool),
        Columns.BOOTSTRAP_OBS: rng.uniform(-1, 1, (N, 4)).astype(np.float32),
        Columns.TRUNC_INDEX: np.zeros(0, np.int64),
        Columns.TRUNC_OBS: np.zeros((0, 4), np.float32),
    }


def ppo_config(**training):
    return (
        PPOConfig()
        .environment(observation_space=OBS, action_space=DISCRETE)
        .training(**training)
        .debugging(seed=0)
    )


class ValueOnlyLearner(PPOLearner):
    """A PPOLearner whose loss is mean(V(s)^2) only: the policy gets no gradient."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        loss = fwd_out[Columns.VF_PREDS].pow(2).mean()
        self.log_metrics(value_only_loss=loss)
        return loss


def test_a_subclass_that_overrides_the_loss_trains_on_its_own_loss():
    """Autograd on the subclass's loss, not PPO's hand-written gradient: one step of Adam
    moves the weights exactly as autograd's gradient of mean(V^2) says."""
    config = ppo_config(train_batch_size=32, minibatch_size=32, num_epochs=1, grad_clip=None)
    spec = RLModuleSpec(DefaultPPOTorchRLModule, OBS, DISCRETE)
    learner = ValueOnlyLearner(config, spec)
    assert learner.fast_gradient() is None
    assert PPOLearner(config, spec).fast_gradient() is ppo_fast_gradient

    # Expected: our Adam's first step on autograd's gradient of the same loss.
    module = copy.deepcopy(learner.module)
    adam = Adam(module.parameters(), lr=config.lr, eps=1e-5)
    batch = learner.compute_advantages(fragment())  # the same rows (one minibatch of all)
    obs = torch.from_numpy(batch[Columns.OBS])
    module.compute_values({Columns.OBS: obs}).pow(2).mean().backward()
    assert adam.flat_grad.abs().max() > 0
    adam.step()
    pi_head = [p.clone() for p in learner.module.pi_head.parameters()]

    metrics = learner.update(fragment(), timestep=0)

    assert set(metrics) >= {"value_only_loss", "gradients_default_optimizer_global_norm"}
    assert "policy_loss" not in metrics
    torch.testing.assert_close(learner.optimizer.flat_param, adam.flat_param)
    for before, after in zip(pi_head, learner.module.pi_head.parameters()):
        assert torch.equal(before, after)  # the policy had no gradient


def test_fast_path_only_for_the_exact_registered_pair():
    spec = RLModuleSpec(DefaultPPOTorchRLModule, OBS, DISCRETE)

    class MyModule(DefaultPPOTorchRLModule):
        pass

    class MyLearner(PPOLearner):
        pass

    config = ppo_config()
    assert registered_fast_gradient(PPOLearner, DefaultPPOTorchRLModule) is ppo_fast_gradient
    assert PPOLearner(config, spec).fast_gradient() is ppo_fast_gradient
    assert MyLearner(config, spec).fast_gradient() is None
    assert PPOLearner(config, RLModuleSpec(MyModule, OBS, DISCRETE)).fast_gradient() is None
    learner = PPOLearner(config, spec)
    learner.compute_loss_for_module = ValueOnlyLearner.compute_loss_for_module.__get__(learner)
    assert learner.fast_gradient() is None  # an instance that overrides the loss
    patched = PPOLearner(config, spec)
    with pytest.MonkeyPatch.context() as mp:  # a class whose loss is patched afterwards
        mp.setattr(PPOLearner, "compute_loss_for_module", ValueOnlyLearner.compute_loss_for_module)
        assert patched.fast_gradient() is None
    assert patched.fast_gradient() is ppo_fast_gradient
    # SAC's hand-written gradients: 1.31x end to end on a quiet machine, kept.
    assert registered_fast_gradient(SACLearner, DefaultSACTorchRLModule) is sac_fast_gradient


def test_mean_metrics_takes_tensors_and_numbers():
    rows = [
        {"a": torch.tensor(1.0), "n": 2, "b": torch.tensor(3)},
        {"a": torch.tensor(2.0), "n": 4, "b": torch.tensor(5)},
    ]
    assert Learner.mean_metrics(rows) == {"a": 1.5, "n": 3.0, "b": 4.0}
    assert list(Learner.mean_metrics(rows)) == ["a", "n", "b"]


def replayed(B: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        Columns.OBS: rng.uniform(-1, 1, (B, 4)).astype(np.float32),
        Columns.ACTIONS: rng.integers(0, 2, B),
        Columns.REWARDS: rng.normal(size=B).astype(np.float32),
        Columns.NEXT_OBS: rng.uniform(-1, 1, (B, 4)).astype(np.float32),
        Columns.TERMINATEDS: rng.random(B) < 0.2,
        Columns.DISCOUNTS: np.full(B, 0.99, np.float32),
        Columns.WEIGHTS: np.ones(B, np.float32),
        Columns.INDICES: np.arange(B),
    }


def test_replay_results_keep_td_errors_and_counters():
    config = DQNConfig().environment(observation_space=OBS, action_space=DISCRETE)
    learner = DQNLearner(config, RLModuleSpec(DefaultDQNTorchRLModule, OBS, DISCRETE))
    out = learner.update(replayed(), timestep=0)
    assert isinstance(out["td_error"], np.ndarray) and out["td_error"].shape == (8,)
    assert out["num_non_finite_updates_skipped"] == 0
    assert out["num_module_steps_trained"] == 8
    assert {"qf_loss", "curr_lr", "gradients_default_optimizer_global_norm"} <= set(out)


def test_sac_result_has_what_the_training_step_reports():
    box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    config = SACConfig().environment(observation_space=OBS, action_space=box)
    learner = SACLearner(config, RLModuleSpec(DefaultSACTorchRLModule, OBS, box))
    batch = replayed()
    batch[Columns.ACTIONS] = np.random.default_rng(0).uniform(-1, 1, (8, 1)).astype(np.float32)
    out = learner.update(batch, timestep=0)
    expected = {
        *learner.current_lrs(),
        "log_alpha_value",
        "target_entropy",
        "num_non_finite_updates_skipped",
        "num_module_steps_trained",
        *(f"gradients_{name}_global_norm" for name in ("actor", "critic", "alpha")),
    }
    assert expected <= set(out)
    assert out["target_entropy"] == -1.0 and out["num_module_steps_trained"] == 8
    assert out["td_error"].shape == (8,)
    assert all(isinstance(v, float | int) for k, v in out.items() if k != "td_error")
