"""The PG loss: REINFORCE's gradient with a baseline, against a hand computation; the
returns it trains on are the discounted Monte-Carlo returns (lambda = 1)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from scalerl.algorithms.pg import PGConfig
from scalerl.algorithms.pg.pg_learner import PGLearner, pg_loss
from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.core.distributions import Categorical
from scalerl.core.rl_module import Columns, RLModuleSpec


def test_reinforce_gradient_matches_the_hand_computation():
    """dL/dz_i = -A_i (onehot(a_i) - softmax(z_i)) / B, dL/dV_i = 2 c (V_i - G_i) / B."""
    z = torch.tensor([[0.0, 0.0], [1.0, -1.0], [0.5, 2.0]], requires_grad=True)
    V = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    batch = {
        Columns.ACTIONS: torch.tensor([0, 1, 1]),
        Columns.ADVANTAGES: torch.tensor([1.0, -2.0, 0.5]),
        Columns.VALUE_TARGETS: torch.tensor([1.5, 0.0, 2.0]),
    }
    fwd_out = {Columns.ACTION_DIST_INPUTS: z, Columns.VF_PREDS: V}
    loss, stats = pg_loss(Categorical, batch, fwd_out, vf_loss_coeff=0.5)
    loss.backward()

    B, A, G = 3, batch[Columns.ADVANTAGES], batch[Columns.VALUE_TARGETS]
    p = torch.softmax(z.detach(), -1)
    onehot = torch.nn.functional.one_hot(batch[Columns.ACTIONS], 2).float()
    torch.testing.assert_close(z.grad, -(A[:, None] * (onehot - p)) / B)
    torch.testing.assert_close(V.grad, 2 * 0.5 * (V.detach() - G) / B)
    logp = torch.log(p[torch.arange(3), batch[Columns.ACTIONS]])
    expected_policy_loss = -(logp * A).mean()
    torch.testing.assert_close(stats["policy_loss"], expected_policy_loss)
    torch.testing.assert_close(stats["vf_loss"], ((V.detach() - G) ** 2).mean())
    torch.testing.assert_close(loss.detach(), expected_policy_loss + 0.5 * stats["vf_loss"])


def test_value_targets_are_the_discounted_returns():
    """With lambda = 1 the targets are G_t = r_t + gamma G_{t+1}, whatever V is."""
    obs_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    act_space = gym.spaces.Discrete(2)
    config = (
        PGConfig()
        .environment(observation_space=obs_space, action_space=act_space)
        .training(gamma=0.9)
    )
    learner = PGLearner(config, RLModuleSpec(DefaultPPOTorchRLModule, obs_space, act_space))
    T, N = 3, 1
    rng = np.random.default_rng(0)
    fragment = {
        Columns.OBS: rng.uniform(-1, 1, (T, N, 3)).astype(np.float32),
        Columns.ACTIONS: np.zeros((T, N), np.int64),
        Columns.ACTION_DIST_INPUTS: np.zeros((T, N, 2), np.float32),
        Columns.REWARDS: np.array([[1.0], [2.0], [4.0]], np.float32),
        Columns.TERMINATEDS: np.array([[False], [False], [True]]),
        Columns.TRUNCATEDS: np.zeros((T, N), bool),
        Columns.BOOTSTRAP_OBS: np.zeros((N, 3), np.float32),
        Columns.TRUNC_INDEX: np.zeros(0, np.int64),
        Columns.TRUNC_OBS: np.zeros((0, 3), np.float32),
    }
    batch = learner.compute_advantages(fragment)
    expected = np.array([1 + 0.9 * 2 + 0.81 * 4, 2 + 0.9 * 4, 4.0], np.float32)
    np.testing.assert_allclose(batch[Columns.VALUE_TARGETS], expected, rtol=1e-5)
    np.testing.assert_allclose(
        batch[Columns.ADVANTAGES], expected - batch[Columns.VF_PREDS], rtol=1e-5, atol=1e-5
    )
