"""The A2C loss against a hand computation; its n-step returns; microbatches that add up
to the whole batch's step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from scalerl.algorithms.a2c import A2CConfig
from scalerl.algorithms.a2c.a2c_learner import A2CLearner, a2c_loss
from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.core.distributions import Categorical
from scalerl.core.rl_module import Columns, RLModuleSpec

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)


def test_loss_and_gradient_match_the_hand_computation():
    """Two steps, logits z, actions a, A = [2, -1], R = [1, 0], V = [0.5, 1]:
    policy = -(A0 log p0(a0) + A1 log p1(a1)) / 2, vf = ((R - V)^2).mean(), entropy mean."""
    z = torch.tensor([[0.0, 0.0], [float(np.log(3.0)), 0.0]], requires_grad=True)  # p1 = [.75, .25]
    V = torch.tensor([0.5, 1.0], requires_grad=True)
    batch = {
        Columns.ACTIONS: torch.tensor([0, 1]),
        Columns.ADVANTAGES: torch.tensor([2.0, -1.0]),
        Columns.VALUE_TARGETS: torch.tensor([1.0, 0.0]),
    }
    fwd_out = {Columns.ACTION_DIST_INPUTS: z, Columns.VF_PREDS: V}
    loss, stats = a2c_loss(Categorical, batch, fwd_out, vf_loss_coeff=0.5, entropy_coeff=0.1)
    loss.backward()
    stats = {k: float(v.detach()) for k, v in stats.items()}

    # By hand: log p0(0) = log .5, log p1(1) = log .25.
    policy = -(2.0 * np.log(0.5) + -1.0 * np.log(0.25)) / 2  # -(-2 log 2 + 2 log 2) / 2 = 0
    vf = ((1.0 - 0.5) ** 2 + (0.0 - 1.0) ** 2) / 2  # 0.625
    h0 = np.log(2.0)
    h1 = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    entropy = (h0 + h1) / 2
    assert abs(stats["policy_loss"] - policy) < 1e-6
    assert abs(stats["vf_loss"] - vf) < 1e-6
    assert abs(stats["entropy"] - entropy) < 1e-6
    assert abs(float(loss.detach()) - (policy + 0.5 * vf - 0.1 * entropy)) < 1e-6
    # dL/dV_i = 2 c_vf (V_i - R_i) / B: the critic moves towards the returns.
    torch.testing.assert_close(V.grad, torch.tensor([0.5 * (0.5 - 1.0), 0.5 * (1.0 - 0.0)]))
    # dpolicy/dz_0 = -A_0 (onehot(a_0) - p_0) / B = -2 ([1, 0] - [.5, .5]) / 2 = [-.5, .5]
    # (the entropy of the uniform step 0 is at its maximum: no gradient from it).
    torch.testing.assert_close(z.grad[0], torch.tensor([-0.5, 0.5]))


def make_learner(**training) -> A2CLearner:
    config = (
        A2CConfig()
        .environment(observation_space=OBS_SPACE, action_space=ACT_SPACE)
        .training(gamma=0.9, **training)
        .debugging(seed=0)
    )
    return A2CLearner(config, RLModuleSpec(DefaultPPOTorchRLModule, OBS_SPACE, ACT_SPACE))


def fragment(T: int = 3, N: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        Columns.OBS: rng.uniform(-1, 1, (T, N, 3)).astype(np.float32),
        Columns.ACTIONS: rng.integers(0, 2, (T, N)),
        Columns.ACTION_DIST_INPUTS: np.zeros((T, N, 2), np.float32),
        Columns.REWARDS: np.arange(1.0, T * N + 1, dtype=np.float32).reshape(T, N),
        Columns.TERMINATEDS: np.zeros((T, N), bool),
        Columns.TRUNCATEDS: np.zeros((T, N), bool),
        Columns.BOOTSTRAP_OBS: rng.uniform(-1, 1, (N, 3)).astype(np.float32),
        Columns.TRUNC_INDEX: np.zeros(0, np.int64),
        Columns.TRUNC_OBS: np.zeros((0, 3), np.float32),
    }


def test_n_step_returns_bootstrap_from_the_fragment_end_and_ignore_lambda():
    """use_gae=False: R_t = r_t + gamma R_{t+1}, R_T = V(s_T), whatever `lambda_` says;
    advantages are R - V, not standardized."""
    learner = make_learner(use_gae=False, lambda_=0.5)
    frag = fragment(T=3, N=1)
    batch = learner.compute_advantages(frag)
    v_end = learner._values({Columns.OBS: frag[Columns.BOOTSTRAP_OBS]})[0]
    r = frag[Columns.REWARDS][:, 0]
    expected = [
        r[0] + 0.9 * r[1] + 0.81 * r[2] + 0.729 * v_end,
        r[1] + 0.9 * r[2] + 0.81 * v_end,
        r[2] + 0.9 * v_end,
    ]
    np.testing.assert_allclose(batch[Columns.VALUE_TARGETS], expected, rtol=1e-5)
    prepared = learner.prepare_batch(frag)
    np.testing.assert_allclose(
        prepared[Columns.ADVANTAGES].numpy(), np.asarray(expected) - batch[Columns.VF_PREDS],
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip
    with_gae = make_learner(use_gae=True, lambda_=0.5).compute_advantages(frag)
    assert not np.allclose(with_gae[Columns.VALUE_TARGETS], expected)  # lambda counts there


def test_microbatches_take_the_same_step_as_the_whole_batch():
    whole, micro = make_learner(), make_learner(microbatch_size=2)
    frag = fragment(T=3, N=2)  # 6 rows: microbatches of 2, 2, 2
    m_whole = whole.update(frag, timestep=0)
    m_micro = micro.update(frag, timestep=0)
    for (name, a), b in zip(whole.module.state_dict().items(), micro.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(whole.optimizer.flat_param, make_learner().optimizer.flat_param)
    for key in ("total_loss", "policy_loss", "vf_loss", "entropy"):
        assert abs(m_whole[key] - m_micro[key]) < 1e-5, key
    assert m_micro["num_module_steps_trained"] == 6
