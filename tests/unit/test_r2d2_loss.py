"""The R2D2 loss: n-step returns inside sequences, h-rescaled double-Q targets against a
hand computation, and the burn-in and padding masks (no loss and no gradient there)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from scalerl.algorithms.r2d2.r2d2_loss import r2d2_loss, r2d2_targets, sequence_n_step
from scalerl.algorithms.r2d2.recurrent_dqn_rl_module import RecurrentDQNTorchRLModule
from scalerl.core.columns import Columns


def h(x, eps=1e-3):
    return math.copysign(math.sqrt(abs(x) + 1) - 1, x) + eps * x


def h_inv(x, eps=1e-3):
    root = (math.sqrt(1 + 4 * eps * (abs(x) + 1 + eps)) - 1) / (2 * eps)
    return math.copysign(root**2 - 1, x)


def test_sequence_n_step_returns_stop_at_the_sequence_and_episode_end():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 9.0]])
    mask = torch.tensor([[True, True, True, False]])
    terms = torch.tensor([[False, False, True, False]])
    R, disc, term, boot = sequence_n_step(rewards, terms, mask, n=2, gamma=0.5)
    torch.testing.assert_close(R[0, :3], torch.tensor([1 + 0.5 * 2, 2 + 0.5 * 3, 3.0]))
    torch.testing.assert_close(disc[0, :3], torch.tensor([0.25, 0.25, 0.5]))
    assert term[0, :3].tolist() == [False, True, True]
    assert boot[0, :3].tolist() == [2, 3, 3]


def test_r2d2_targets_with_value_rescaling_against_a_hand_computation():
    """One sequence of 3 valid steps (cut, not ended: bootstrap from o_3), n = 2, gamma
    0.9, double Q: a* from the online Q, evaluated by the target Q, through h and h^-1."""
    q_target = torch.tensor([[[0.0, 0.0], [1.0, 4.0], [2.0, -1.0], [3.0, 5.0]]])
    q_online = torch.tensor([[[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [9.0, 0.0]]])
    rewards = torch.tensor([[1.0, -2.0, 0.5]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    terms = torch.zeros(1, 3, dtype=torch.bool)
    y = r2d2_targets(
        q_target, rewards, terms, mask, n_step=2, gamma=0.9, q_online=q_online, h_epsilon=1e-3
    )
    expected = [
        h(1.0 + 0.9 * -2.0 + 0.81 * h_inv(-1.0)),  # t=0: o_2, a* = 1 (online), Q' = -1
        h(-2.0 + 0.9 * 0.5 + 0.81 * h_inv(3.0)),  # t=1: o_3, a* = 0, Q' = 3
        h(0.5 + 0.9 * h_inv(3.0)),  # t=2: one step left, o_3
    ]
    torch.testing.assert_close(y[0], torch.tensor(expected))
    # Without h and without double Q: plain n-step max targets.
    y = r2d2_targets(q_target, rewards, terms, mask, n_step=2, gamma=0.9, h_epsilon=None)
    torch.testing.assert_close(
        y[0], torch.tensor([1.0 - 1.8 + 0.81 * 2.0, -2.0 + 0.45 + 0.81 * 5.0, 0.5 + 0.9 * 5.0])
    )
    # A termination at the last valid step: no bootstrap past it.
    terms[0, 2] = True
    y = r2d2_targets(q_target, rewards, terms, mask, n_step=2, gamma=0.9, h_epsilon=None)
    torch.testing.assert_close(y[0, 1:], torch.tensor([-2.0 + 0.45, 0.5]))


def tiny_module(seed=0, **model_config):
    torch.manual_seed(seed)
    return RecurrentDQNTorchRLModule(
        gym.spaces.Box(-1, 1, (2,), np.float32),
        gym.spaces.Discrete(2),
        model_config={
            "lstm_cell_size": 3,
            "fcnet_hiddens": [4],
            "lstm_use_prev_action": False,
            "lstm_use_prev_reward": False,
            **model_config,
        },
    )


def tiny_batch():
    """Sequence 0 starts an episode (no burn-in, 5 valid steps); sequence 1 has a burn-in
    of 2 and 4 valid steps (one padded step)."""
    g = torch.Generator().manual_seed(1)
    L = 5
    return {
        Columns.OBS: torch.rand(2, L + 1, 2, generator=g) * 2 - 1,
        Columns.ACTIONS: torch.randint(0, 2, (2, L), generator=g),
        Columns.REWARDS: torch.rand(2, L, generator=g),
        Columns.TERMINATEDS: torch.zeros(2, L, dtype=torch.bool),
        "mask": torch.tensor([[True] * 5, [True] * 4 + [False]]),
        "burn_in": torch.tensor([0, 2]),
        Columns.STATE_IN: {"h": torch.rand(2, 3, generator=g), "c": torch.rand(2, 3, generator=g)},
        "prev_action": torch.zeros(2, dtype=torch.long),
        "prev_reward": torch.zeros(2),
        "weights": torch.tensor([1.0, 0.5]),
    }


def loss_and_grads(module, target, batch):
    module.zero_grad()
    loss, td, trained, _ = r2d2_loss(module, target, batch, n_step=2, gamma=0.9)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in module.parameters()], td, trained


def test_loss_is_the_weighted_mean_over_trained_steps_by_hand():
    module, target = tiny_module(0), tiny_module(1)
    batch = tiny_batch()
    loss, _, td, trained = loss_and_grads(module, target, batch)
    assert trained.tolist() == [[True] * 5, [False, False, True, True, False]]
    with torch.no_grad():
        inputs = {
            Columns.OBS: batch[Columns.OBS],
            Columns.STATE_IN: batch[Columns.STATE_IN],
            Columns.PREV_ACTIONS: torch.zeros(2, 6, dtype=torch.long),
            Columns.PREV_REWARDS: torch.zeros(2, 6),
        }
        q = module.compute_q_values(inputs)[QF_PREDS]  # one unroll: same forward values
        qt = target.compute_q_values(inputs)[QF_PREDS]
    total, count = 0.0, 0
    for i in range(2):
        length = int(batch["mask"][i].sum())
        for t in range(int(batch["burn_in"][i]), length):
            k = min(2, length - t)
            R = sum(0.9**j * float(batch[Columns.REWARDS][i, t + j]) for j in range(k))
            a_star = int(q[i, t + k].argmax())
            y = h(R + 0.9**k * h_inv(float(qt[i, t + k, a_star])))
            delta = float(q[i, t, batch[Columns.ACTIONS][i, t]]) - y
            huber = 0.5 * delta**2 if abs(delta) < 1 else abs(delta) - 0.5
            total += float(batch["weights"][i]) * huber
            count += 1
            assert abs(float(td[i, t]) - abs(delta)) < 1e-5
    assert count == 7
    assert abs(float(loss) - total / count) < 1e-6


def test_burn_in_and_padded_steps_give_no_loss_and_no_gradient():
    module, target = tiny_module(0), tiny_module(1)
    batch = tiny_batch()
    loss, grads, _, _ = loss_and_grads(module, target, batch)

    # Actions and rewards at burn-in (sequence 1, steps 0-1) and padded (step 4) steps.
    changed = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    for t in (0, 1, 4):
        changed[Columns.ACTIONS][1, t] = 1 - changed[Columns.ACTIONS][1, t]
        changed[Columns.REWARDS][1, t] += 5.0
    changed[Columns.OBS][1, 5] += 3.0  # after the bootstrap observation: padding
    loss2, grads2, _, _ = loss_and_grads(module, target, changed)
    assert torch.equal(loss, loss2)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads2))

    # A trained step's reward does change the loss (so the check above can fail).
    control = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    control[Columns.REWARDS][1, 2] += 5.0
    assert not torch.equal(loss, loss_and_grads(module, target, control)[0])

    # No gradient flows back into the burn-in: the stored state and the burn-in
    # observations of sequence 1 get none; sequence 0 (an episode start) gets them.
    obs = batch[Columns.OBS].clone().requires_grad_(True)
    state = {k: v.clone().requires_grad_(True) for k, v in batch[Columns.STATE_IN].items()}
    loss, _, _, _ = r2d2_loss(
        module, target, {**batch, Columns.OBS: obs, Columns.STATE_IN: state}, n_step=2, gamma=0.9
    )
    loss.backward()
    assert obs.grad[1, :2].abs().max() == 0 and state["h"].grad[1].abs().max() == 0
    assert obs.grad[1, 2:4].abs().max() > 0
    assert obs.grad[0, :2].abs().max() > 0 and state["h"].grad[0].abs().max() > 0
    assert obs.grad[:, 5].abs().max() == 0  # bootstrap observations: targets only
