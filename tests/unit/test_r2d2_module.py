"""R2D2's recurrent Q module: the numpy step the EnvRunner uses equals the torch forward,
and exploration is the epsilon-greedy distribution with the epsilon in the weights."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from scalerl.algorithms.r2d2.recurrent_dqn_rl_module import RecurrentDQNTorchRLModule
from scalerl.core.columns import Columns
from scalerl.core.distributions import Categorical


def module(**model_config):
    torch.manual_seed(0)
    return RecurrentDQNTorchRLModule(
        gym.spaces.Box(-1, 1, (3,), np.float32),
        gym.spaces.Discrete(4),
        model_config={"lstm_cell_size": 5, "fcnet_hiddens": [6], **model_config},
    )


def one_step(obs, state, prev_a, prev_r):
    return {
        Columns.OBS: torch.from_numpy(obs)[:, None],
        Columns.STATE_IN: {k: torch.from_numpy(v) for k, v in state.items()},
        Columns.PREV_ACTIONS: torch.from_numpy(prev_a)[:, None],
        Columns.PREV_REWARDS: torch.from_numpy(prev_r)[:, None],
    }


def test_numpy_step_matches_torch_and_epsilon_travels_with_the_weights():
    m = module()
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (6, 3)).astype(np.float32)
    state = {k: rng.normal(size=(6, 5)).astype(np.float32) for k in ("h", "c")}
    prev_a, prev_r = rng.integers(0, 4, 6), rng.normal(size=6).astype(np.float32)
    with torch.no_grad():
        m.epsilon.fill_(0.3)
        out = m.forward_exploration(one_step(obs, state, prev_a, prev_r))
        inference = m.forward_inference(one_step(obs, state, prev_a, prev_r))
    logits, state_out = m.get_numpy_recurrent_fn()(obs, state, prev_a, prev_r)
    np.testing.assert_allclose(logits, out[Columns.ACTION_DIST_INPUTS][:, 0].numpy(), atol=1e-5)
    for k in ("h", "c"):
        np.testing.assert_allclose(state_out[k], out[Columns.STATE_OUT][k].numpy(), atol=1e-5)
    # Epsilon-greedy: P(greedy) = 1 - eps + eps / |A|, every other action eps / |A|.
    q = inference[QF_PREDS][:, 0]
    probs = np.exp(logits)
    greedy = q.argmax(-1).numpy()
    np.testing.assert_allclose(probs[np.arange(6), greedy], 0.7 + 0.3 / 4, rtol=1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    actions = np.stack([Categorical.sample_numpy(logits, rng) for _ in range(4000)])
    np.testing.assert_allclose((actions == greedy).mean(), 0.775, atol=0.03)
    # Inference acts greedily on Q; epsilon 0 explores greedily too.
    assert torch.equal(inference[Columns.ACTION_DIST_INPUTS], inference[QF_PREDS])
    other = module()
    other.set_state({**m.get_state(), "epsilon": torch.tensor(0.0)})
    logits0, _ = other.get_numpy_recurrent_fn()(obs, state, prev_a, prev_r)
    assert (logits0.argmax(-1) == greedy).all()
    assert (Categorical.sample_numpy(logits0, rng) == greedy).all()


def test_sequence_forward_equals_the_step_by_step_forward():
    m = module(lstm_use_prev_action=False)
    g = torch.Generator().manual_seed(0)
    batch = {
        Columns.OBS: torch.rand(2, 7, 3, generator=g),
        Columns.STATE_IN: {"h": torch.rand(2, 5, generator=g), "c": torch.rand(2, 5, generator=g)},
        Columns.PREV_ACTIONS: torch.zeros(2, 7, dtype=torch.long),
        Columns.PREV_REWARDS: torch.rand(2, 7, generator=g),
    }
    with torch.no_grad():
        whole = m.compute_q_values(batch)
        state, steps = batch[Columns.STATE_IN], []
        for t in range(7):
            out = m.compute_q_values(
                {
                    **{k: v[:, t : t + 1] for k, v in batch.items() if k != Columns.STATE_IN},
                    Columns.STATE_IN: state,
                }
            )
            steps.append(out[QF_PREDS])
            state = out[Columns.STATE_OUT]
    torch.testing.assert_close(whole[QF_PREDS], torch.cat(steps, dim=1))
    torch.testing.assert_close(whole[Columns.STATE_OUT]["h"], state["h"])
