"""DQN end to end: sampling into replay, updates with priorities, the epsilon schedule
travelling with the weights, every Rainbow part on, checkpoints (issue 4, in progress)."""

from __future__ import annotations

import numpy as np
import pytest

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.dqn import DQNConfig
from scalerl.utils.errors import CheckpointError, ConfigError

SMALL = dict(
    num_steps_sampled_before_learning_starts=64,
    min_sample_timesteps_per_iteration=128,
    target_network_update_freq=50,
    epsilon=[[0, 1.0], [256, 0.1]],
)


def build(**training) -> Algorithm:
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .training(**{**SMALL, **training})
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
        .build_algo()
    )


@pytest.mark.parametrize(
    "training",
    [
        {},
        {"replay_buffer_config": {"type": "uniform", "capacity": 1000}, "double_q": False},
        # Rainbow: every part on.
        {"n_step": 3, "noisy": True, "num_atoms": 11, "v_min": -5.0, "v_max": 5.0},
    ],
    ids=["default", "uniform", "rainbow"],
)
def test_train_checkpoint_restore(training, tmp_path):
    algo = build(**training)
    for _ in range(3):
        result = algo.train()
    stats = result["learners"]["default_policy"]
    assert np.isfinite(stats["qf_loss"])
    # Summed over the iteration's updates of 32 transitions each.
    assert stats["num_module_steps_trained"] > 0 and stats["num_module_steps_trained"] % 32 == 0
    assert result["replay_buffer"]["num_transitions"] == 384
    # The epsilon schedule reached the EnvRunner with the weights.
    runner = algo.env_runner_group.local_runner
    assert float(runner.module.epsilon) == pytest.approx(0.1)
    assert stats["curr_epsilon"] == pytest.approx(0.1)
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    obs = np.array([0.01, 0.0, -0.02, 0.0], np.float32)
    assert restored.compute_single_action(obs) == algo.compute_single_action(obs)
    assert restored.compute_single_action(obs, explore=True) in (0, 1)
    restored.train()
    restored.stop()
    algo.stop()


def test_dqn_config_errors():
    with pytest.raises(ConfigError, match="replay_buffer_config"):
        build(replay_buffer_config={"type": "reservoir"})
    with pytest.raises(ConfigError, match="tau"):
        build(tau=0.0)
    with pytest.raises(ConfigError, match="Discrete action space"):
        DQNConfig().environment("Pendulum-v1").build_algo()


def test_replay_buffer_in_checkpoint_round_trip_and_mismatch(tmp_path):
    algo = build(store_buffer_in_checkpoints=True)
    algo.train()
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    assert (tmp_path / "ckpt" / "replay_buffer" / "buffer.safetensors").is_file()
    restored = Algorithm.from_checkpoint(path)
    rb, rb2 = algo.replay_buffer, restored.replay_buffer
    assert len(rb2) == len(rb) == 128
    np.testing.assert_array_equal(rb2.tree.get(np.arange(128)), rb.tree.get(np.arange(128)))
    stored, loaded = rb.get_state()[0], rb2.get_state()[0]
    assert stored.keys() == loaded.keys()
    for k in stored:
        np.testing.assert_array_equal(stored[k], loaded[k])
    restored.stop()
    # Without the setting the buffer stays out of checkpoints (and restores empty).
    plain = build()
    plain.train()
    plain.save(tmp_path / "plain")
    assert not (tmp_path / "plain" / "replay_buffer").exists()
    assert len(Algorithm.from_checkpoint(tmp_path / "plain").replay_buffer) == 0
    # A buffer of another capacity is a clear error that names the setting.
    with pytest.raises(CheckpointError, match="replay_buffer_config"):
        Algorithm.from_checkpoint(
            path, {"replay_buffer_config": {"type": "prioritized", "capacity": 64}}
        )
    algo.stop()
    plain.stop()


@pytest.mark.parametrize("intensity", [1.0, 0.5, 12.0])
def test_training_intensity_is_replayed_over_sampled_transitions(intensity, count_updates):
    """RLlib's meaning: `training_intensity` replayed transitions per sampled one, with the
    fraction of an update carried over (4-step rounds, batches of 32)."""
    algo = build(training_intensity=intensity, min_sample_timesteps_per_iteration=1000)
    updates = count_updates(algo.learner_group.get_local_learner())
    for _ in range(3):
        algo.train()
    sampled = algo.num_env_steps_sampled_lifetime - 64  # learning starts after 64 steps
    replayed = updates[0] * algo.config.train_batch_size
    assert replayed / sampled == pytest.approx(intensity, rel=0.05)
    algo.stop()
