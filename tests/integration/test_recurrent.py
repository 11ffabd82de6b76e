"""Recurrent PPO (`use_lstm`): the EnvRunner carries state, the learner replays it on
padded sequences, and acting, evaluation and checkpoints take the state path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.ppo.recurrent_ppo_rl_module import RecurrentPPOTorchRLModule
from scalerl.core.columns import Columns
from scalerl.examples.envs import StatelessCartPole
from scalerl.utils.errors import ConfigError
from scalerl.utils.sequences import SequenceLayout, recurrent_values

LSTM = {
    "use_lstm": True,
    "lstm_cell_size": 8,
    "max_seq_len": 4,
    "fcnet_hiddens": [8],
    "lstm_use_prev_action": True,
    "lstm_use_prev_reward": True,
}


ATTENTION = {
    "use_attention": True,
    "attention_dim": 8,
    "attention_head_dim": 4,
    "attention_num_heads": 2,
    "attention_position_wise_mlp_dim": 8,
    "attention_memory_inference": 5,
    "attention_memory_training": 5,
    "max_seq_len": 4,
    "fcnet_hiddens": [8],
    "lstm_use_prev_reward": True,
}


def build(model_config=None, **env_config) -> Algorithm:
    return (
        PPOConfig()
        .environment(StatelessCartPole, env_config=env_config)
        .env_runners(num_envs_per_env_runner=3, rollout_fragment_length=25)
        .training(train_batch_size=75, minibatch_size=16, num_epochs=2)
        .rl_module(model_config=model_config or LSTM)
        .evaluation(evaluation_interval=1, evaluation_duration=2)
        .debugging(seed=0)
        .build_algo()
    )


def step_by_step(module, fragment):
    """Replay a fragment one step at a time from the first recorded state, resetting the
    state at episode ends as the EnvRunner does: (dist inputs [T, N, D], values [T, N])."""
    T, N = fragment[Columns.REWARDS].shape
    starts = fragment["seq_index"]
    first = starts[:, 0] == 0
    order = np.argsort(starts[first, 1])
    state = {k: torch.from_numpy(v[first][order]) for k, v in fragment[Columns.STATE_IN].items()}
    initial = module.get_initial_state()
    inputs, values = [], []
    with torch.no_grad():
        for t in range(T):
            batch = {
                Columns.OBS: torch.from_numpy(fragment[Columns.OBS][t])[:, None],
                Columns.STATE_IN: state,
                Columns.PREV_ACTIONS: torch.from_numpy(fragment[Columns.PREV_ACTIONS][t])[:, None],
                Columns.PREV_REWARDS: torch.from_numpy(fragment[Columns.PREV_REWARDS][t])[:, None],
            }
            out = module.forward_train(batch)
            inputs.append(out[Columns.ACTION_DIST_INPUTS][:, 0])
            values.append(out[Columns.VF_PREDS][:, 0])
            state = out[Columns.STATE_OUT]
            done = torch.from_numpy(
                fragment[Columns.TERMINATEDS][t] | fragment[Columns.TRUNCATEDS][t]
            )
            state = {
                k: torch.where(done.reshape(-1, *[1] * (v.dim() - 1)), initial[k], v)
                for k, v in state.items()
            }
    return torch.stack(inputs).numpy(), torch.stack(values).numpy()


@pytest.mark.parametrize("model_config", [LSTM, ATTENTION], ids=["lstm", "attention"])
def test_runner_records_what_sequences_replay(model_config):
    """The learner's sequence forward reproduces the runner's step-by-step forward: same
    action-distribution inputs at every step, and the same values (truncations included)."""
    algo = build(model_config, max_episode_steps=7)  # truncations inside the fragment
    runner = algo.env_runner_group.local_runner
    fragment, _ = runner.sample()
    module = algo.get_module()
    assert isinstance(module, RecurrentPPOTorchRLModule)
    T, N = fragment[Columns.REWARDS].shape
    assert len(fragment["trunc_index"]) > 0
    # Sequences break at episode starts and every max_seq_len steps.
    layout = SequenceLayout.from_starts(fragment["seq_index"], T)
    assert layout.mask.sum() == T * N and layout.mask.shape[1] <= model_config["max_seq_len"]
    inputs, values = step_by_step(module, fragment)
    np.testing.assert_allclose(inputs, fragment[Columns.ACTION_DIST_INPUTS], atol=1e-5)

    def compute_values(batch):
        with torch.no_grad():
            tensors = {k: _tensors(v) for k, v in batch.items()}
            return module.compute_values(tensors).numpy()

    v, v_boot, v_trunc = recurrent_values(compute_values, fragment)
    np.testing.assert_allclose(v, values, atol=1e-5)
    assert v_boot.shape == (N,) and v_trunc.shape == (len(fragment["trunc_index"]),)
    # The runner resets state and previous inputs after each episode end.
    done = fragment[Columns.TERMINATEDS] | fragment[Columns.TRUNCATEDS]
    t, n = np.nonzero(done[:-1])
    assert (fragment[Columns.PREV_REWARDS][t + 1, n] == 0).all()
    assert (fragment[Columns.PREV_ACTIONS][t + 1, n] == 0).all()
    algo.stop()


def _tensors(x):
    if isinstance(x, dict):
        return {k: _tensors(v) for k, v in x.items()}
    return torch.from_numpy(np.ascontiguousarray(x))


def test_attention_trains_and_acts_with_its_memory(tmp_path):
    algo = build(ATTENTION)
    result = algo.train()
    assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    state = algo.get_module().get_initial_state()
    assert state["memory"].shape == (1, 5, 8) and "vf_memory" in state
    obs = np.array([0.05, -0.02], np.float32)
    for _ in range(3):
        action, state, _ = algo.compute_single_action(obs, state)
    assert action in (0, 1) and state["memory_mask"][-3:].all()
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    init = algo.get_module().get_initial_state()
    a1, s1, _ = algo.compute_single_action(obs, init)
    a2, s2, _ = restored.compute_single_action(obs, init)
    assert a1 == a2
    np.testing.assert_allclose(s1["memory"], s2["memory"], atol=1e-6)
    restored.stop()
    algo.stop()


def test_train_evaluate_checkpoint_and_act_with_state(tmp_path):
    algo = build()
    for _ in range(2):
        result = algo.train()
    stats = result["learners"]["default_policy"]
    assert np.isfinite(stats["total_loss"]) and stats["num_module_steps_trained"] == 75 * 2
    assert result["evaluation"]["env_runners"]["num_episodes"] >= 2
    module = algo.get_module()
    state = module.get_initial_state()
    assert set(state) == {"h", "c", "vf_h", "vf_c"} and state["h"].shape == (8,)
    obs = np.array([0.05, -0.02], np.float32)
    action, state_out, extra = algo.compute_single_action(
        obs, state, prev_action=1, prev_reward=1.0
    )
    assert action in (0, 1) and state_out["h"].shape == (8,) and extra == {}
    assert not np.allclose(state_out["h"], 0.0)  # the state moved
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    assert isinstance(restored.get_module(), RecurrentPPOTorchRLModule)
    s1, s2 = state, module.get_initial_state()
    for obs in np.random.default_rng(0).normal(0, 0.1, (10, 2)).astype(np.float32):
        a1, s1, _ = algo.compute_single_action(obs, s1)
        a2, s2, _ = restored.compute_single_action(obs, s2)
        assert a1 == a2
        np.testing.assert_allclose(s1["h"], s2["h"], atol=1e-6)
    # Without a state: the initial one each call, and only the action back.
    assert algo.compute_single_action(obs) in (0, 1)
    restored.stop()
    algo.stop()


def test_memory_carries_history():
    """The same observation after different histories leaves different states."""
    algo = build()
    initial = algo.get_module().get_initial_state()
    obs = np.zeros(2, np.float32)
    states = []
    for first in (0.2, -0.2):
        _, state, _ = algo.compute_single_action(np.full(2, first, np.float32), initial)
        _, state, _ = algo.compute_single_action(obs, state)
        states.append(state["h"])
    assert not np.allclose(*states)
    algo.stop()


def test_config_errors_for_memory_settings():
    with pytest.raises(ConfigError, match="use_lstm.*use_attention"):
        build({"use_lstm": True, "use_attention": True})
    with pytest.raises(ConfigError, match="max_seq_len"):
        build({"use_lstm": True, "max_seq_len": 0})
    with pytest.raises(ConfigError, match="lstm_cel"):
        build({"use_lstm": True, "lstm_cel_size": 8})


def test_lstm_with_nested_observation_and_action_spaces(tmp_path):
    """The state path composes with the space path: Dict observation with an image, Dict
    action with a Box, previous actions fed back."""
    from gymnasium import spaces

    from scalerl.examples.envs import SpaceTestEnv

    obs_space = spaces.Dict(
        {
            "img": spaces.Box(0, 255, (8, 8, 1), np.uint8),
            "t": spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32))),
        }
    )
    act_space = spaces.Dict({"a": spaces.Discrete(3), "b": spaces.Box(-2.0, 2.0, (2,), np.float32)})
    algo = (
        PPOConfig()
        .environment(
            SpaceTestEnv, env_config={"observation_space": obs_space, "action_space": act_space}
        )
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=16)
        .training(train_batch_size=32, minibatch_size=16, num_epochs=1)
        .rl_module(model_config={**LSTM, "conv_filters": [[4, 3, 2]]})
        .debugging(seed=0)
        .build_algo()
    )
    for _ in range(2):
        result = algo.train()
    assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    state = algo.get_module().get_initial_state()
    obs_space.seed(0)
    for _ in range(3):
        action, state, _ = algo.compute_single_action(obs_space.sample(), state, explore=True)
        assert act_space.contains(action), action
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    obs = obs_space.sample()
    init = algo.get_module().get_initial_state()
    np.testing.assert_array_equal(
        restored.compute_single_action(obs, init)[0]["b"],
        algo.compute_single_action(obs, init)[0]["b"],
    )
    restored.stop()
    algo.stop()


@pytest.mark.parametrize("share", [False, True])
def test_numpy_lstm_step_equals_the_torch_forward(share):
    """The EnvRunner's numpy LSTM step (Box actions, previous action and reward fed)."""
    algo = (
        PPOConfig()
        .environment("Pendulum-v1")
        .rl_module(model_config={**LSTM, "vf_share_layers": share, "log_std_init": -0.5})
        .build_algo()
    )
    module = algo.get_module()
    fn = module.get_numpy_recurrent_fn()
    assert fn is not None
    rng = np.random.default_rng(0)
    B = 5
    obs = rng.normal(size=(B, 3)).astype(np.float32)
    state = {
        k: rng.normal(size=(B, *v.shape)).astype(np.float32)
        for k, v in module.get_initial_state().items()
    }
    prev_a = rng.normal(size=(B, 1)).astype(np.float32)
    prev_r = rng.normal(size=B).astype(np.float32)
    inputs, state_out = fn(obs, state, prev_a, prev_r)
    with torch.no_grad():
        out = module.forward_exploration(
            {
                Columns.OBS: torch.from_numpy(obs)[:, None],
                Columns.STATE_IN: {k: torch.from_numpy(v) for k, v in state.items()},
                Columns.PREV_ACTIONS: torch.from_numpy(prev_a)[:, None],
                Columns.PREV_REWARDS: torch.from_numpy(prev_r)[:, None],
            }
        )
    np.testing.assert_allclose(inputs, out[Columns.ACTION_DIST_INPUTS][:, 0].numpy(), atol=1e-5)
    assert set(state_out) == set(state)
    for k, v in out[Columns.STATE_OUT].items():
        np.testing.assert_allclose(state_out[k], v.numpy(), atol=1e-5)
    algo.stop()
