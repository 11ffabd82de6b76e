"""R2D2 end to end on stateless CartPole: sequences into replay, updates with sequence
priorities, acting with state, evaluation, checkpoints, configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.r2d2 import R2D2, R2D2Config
from scalerl.algorithms.registry import get_algorithm_class
from scalerl.examples.envs import StatelessCartPole
from scalerl.utils.errors import ConfigError

SMALL = dict(
    burn_in=2,
    train_batch_size=8,
    num_steps_sampled_before_learning_starts=32,
    min_sample_timesteps_per_iteration=64,
    target_network_update_freq=40,
    epsilon=[[0, 1.0], [128, 0.1]],
)
MODEL = {"max_seq_len": 4, "lstm_cell_size": 8, "fcnet_hiddens": [8]}


def config(model=None, **training) -> R2D2Config:
    return (
        R2D2Config()
        .environment(StatelessCartPole)
        .env_runners(num_envs_per_env_runner=2)
        .training(**{**SMALL, **training})
        .rl_module(model_config={**MODEL, **(model or {})})
        .debugging(seed=0)
    )


def test_registered():
    assert get_algorithm_class("R2D2") is R2D2


@pytest.mark.parametrize(
    "training",
    [
        {},
        {
            "replay_buffer_config": {"type": "uniform", "capacity": 100},
            "zero_init_states": True,
            "use_h_function": False,
            "double_q": False,
            "n_step": 1,
            "training_intensity": 4.0,
            "store_buffer_in_checkpoints": True,
        },
    ],
    ids=["default", "uniform-zero-state"],
)
def test_train_act_evaluate_checkpoint(training, tmp_path):
    cfg = config(**training).evaluation(evaluation_interval=2, evaluation_duration=2)
    algo = cfg.build_algo()
    results = [algo.train() for _ in range(3)]
    stats = results[-1]["learners"]["default_policy"]
    for key in ("qf_loss", "qf_mean", "td_error_mean", "curr_lr", "num_module_steps_trained"):
        assert np.isfinite(stats[key]), key
    assert stats["gradients_default_optimizer_global_norm"] > 0
    assert stats["curr_epsilon"] == pytest.approx(0.1)
    assert float(algo.env_runner_group.local_runner.module.epsilon) == pytest.approx(0.1)
    rb = results[-1]["replay_buffer"]
    assert rb["num_sequences"] > 0 and rb["num_env_steps"] >= rb["num_sequences"]
    assert rb["nbytes"] == algo.replay_buffer.capacity * algo.replay_buffer.bytes_per_sequence
    assert algo.replay_buffer.sequence_length == 2 + 4
    assert results[-1]["num_env_steps_sampled_lifetime"] == 3 * 64
    assert results[1]["evaluation"]["env_runners"]["num_episodes"] == 2

    # Acting with state: the state threads through calls and changes the action input.
    obs = np.array([0.01, -0.02], np.float32)
    state = algo.get_module().get_initial_state()
    action, state_out, extra = algo.compute_single_action(obs, state)
    assert action in (0, 1) and extra == {}
    assert set(state_out) == {"h", "c"} and state_out["h"].shape == (8,)
    assert not np.allclose(state_out["h"], 0.0)
    assert algo.compute_single_action(obs) == action  # no state: from the initial state
    explored = {algo.compute_single_action(obs, state, explore=True)[0] for _ in range(40)}
    assert explored <= {0, 1}

    # Checkpoint round trip: same greedy actions along a rollout; the target network
    # restarts as a copy of the restored weights.
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    s1 = s2 = state
    for t in range(5):
        o = obs + 0.01 * t
        a1, s1, _ = algo.compute_single_action(o, s1)
        a2, s2, _ = restored.compute_single_action(o, s2)
        assert a1 == a2
        np.testing.assert_allclose(s1["h"], s2["h"], rtol=1e-6)
    learner = restored.learner_group.get_local_learner()
    for p, q in zip(learner.module.parameters(), learner.target_module.parameters()):
        assert torch.equal(p, q)
    assert restored.iteration == 3
    # With `store_buffer_in_checkpoints` the stored sequences come back too.
    expected = len(algo.replay_buffer) if algo.config.store_buffer_in_checkpoints else 0
    assert len(restored.replay_buffer) == expected
    if expected:
        np.testing.assert_array_equal(
            restored.replay_buffer.get_state()[0]["mask"], algo.replay_buffer.get_state()[0]["mask"]
        )
    restored.train()
    restored.stop()
    algo.stop()


def test_config_errors():
    with pytest.raises(ConfigError, match="use_lstm=True"):
        config(model={"use_lstm": False}).build_algo()
    with pytest.raises(ConfigError, match="use_lstm"):
        config(model={"use_attention": True}).build_algo()
    with pytest.raises(ConfigError, match="burn_in"):
        config(burn_in=-1).build_algo()
    with pytest.raises(ConfigError, match="n_step"):
        config(n_step=7).build_algo()  # > burn_in + max_seq_len = 6
    with pytest.raises(ConfigError, match="set `burn_in`"):
        config(replay_buffer_config={"replay_burn_in": 20}).build_algo()
    with pytest.raises(ConfigError, match="num_atoms=1"):
        config(num_atoms=51).build_algo()
    with pytest.raises(ConfigError, match="h_function_epsilon"):
        config(h_function_epsilon=0.0).build_algo()
    with pytest.raises(ConfigError, match="Discrete action space"):
        R2D2Config().environment("Pendulum-v1").build_algo()
    with pytest.raises(ConfigError, match="burn_i"):  # a typo gets a suggestion
        R2D2Config().training(burnin=4)


def test_two_ray_runners_each_have_their_own_sequence_cutter():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        algo = config().env_runners(num_env_runners=2, num_cpus_per_env_runner=0.25).build_algo()
        for _ in range(2):
            result = algo.train()
        # One per stream of fragments: (runner, generation of its actor).
        assert sorted(algo.cutters) == [(1, 0), (2, 0)]
        assert result["num_env_steps_sampled_lifetime"] == 128
        assert result["replay_buffer"]["num_sequences"] == len(algo.replay_buffer) > 0
        assert np.isfinite(result["learners"]["default_policy"]["qf_loss"])
        algo.stop()
    finally:
        ray.shutdown()
