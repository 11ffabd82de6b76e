"""APEX-DQN: Ray EnvRunner actors with their own epsilons, replay shards as Ray actors,
priorities computed by the actors and updated by the learner (issue 4)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import ray
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.apex_dqn import APEXDQNConfig
from scalerl.algorithms.apex_dqn.apex_env_runner import ApexEnvRunner, per_worker_epsilon
from scalerl.algorithms.apex_dqn.replay_shard import ReplayShard
from scalerl.cli import main
from scalerl.env.registry import get_env_creator
from scalerl.utils.errors import CheckpointError, ConfigError


def small_config(**training) -> APEXDQNConfig:
    return (
        APEXDQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5, rollout_fragment_length=20)
        .training(
            **{
                "num_steps_sampled_before_learning_starts": 100,
                "min_sample_timesteps_per_iteration": 400,
                "target_network_update_freq": 100,
                "training_intensity": 4,
                "num_replay_buffer_shards": 2,
                "replay_buffer_config": {"type": "prioritized", "capacity": 10_000},
                **training,
            }
        )
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )


def test_per_worker_epsilons_span_base_to_base_to_the_1_plus_alpha():
    eps = [per_worker_epsilon(i, 4, 0.4, 7.0) for i in (1, 2, 3, 4)]
    assert eps == pytest.approx([0.4, 0.4 ** (1 + 7 / 3), 0.4 ** (1 + 14 / 3), 0.4**8])
    assert per_worker_epsilon(1, 1, 0.4, 7.0) == 0.4


def test_actor_keeps_its_epsilon_and_prioritizes_with_its_own_q():
    config = small_config(n_step=2)
    config.validate()
    spec = config.get_rl_module_spec(*_spaces())
    runner = ApexEnvRunner(config, get_env_creator("CartPole-v1"), spec, 2, 2)
    assert float(runner.module.epsilon) == pytest.approx(0.4**8)
    weights = {k: v.clone() for k, v in runner.module.state_dict().items()}
    weights["epsilon"] = torch.tensor(1.0)  # the learner's value must not win
    runner.set_weights(weights)
    assert float(runner.module.epsilon) == pytest.approx(0.4**8)
    (t, priorities), metrics = runner.sample_transitions()
    assert metrics["epsilon"] == pytest.approx(0.4**8)
    assert len(t["rewards"]) == 20 and priorities.shape == (20,)
    with torch.no_grad():
        q = runner.module.compute_q_values({"obs": torch.from_numpy(t["obs"])})["qf_preds"]
        q_next = runner.module.compute_q_values({"obs": torch.from_numpy(t["next_obs"])})
    q_sa = q.numpy()[np.arange(20), t["actions"]]
    y = t["rewards"] + t["discounts"] * (1 - t["terminateds"]) * q_next["qf_preds"].numpy().max(1)
    np.testing.assert_allclose(priorities, np.abs(y - q_sa), rtol=1e-5, atol=1e-6)
    runner.stop()


def test_shard_stores_actor_priorities():
    shard = ReplayShard({"type": "prioritized", "alpha": 1.0, "capacity": 8}, 8, seed=0)
    t = {"obs": np.zeros((4, 2), np.float32), "rewards": np.arange(4, dtype=np.float32)}
    assert shard.add((t, np.array([0.0, 0.0, 0.0, 3.0]))) == 4
    batch = shard.sample(64)
    # Priorities ~(0, 0, 0, 3) (+eps): almost every draw is transition 3.
    assert (batch["rewards"] == 3).mean() > 0.95
    shard.update_priorities(np.array([3]), np.array([0.0]))
    assert shard.stats()["num_transitions"] == 4


def _spaces():
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_apex_trains_checkpoints_restores_and_stops(ray_local, tmp_path, assert_actor_dead):
    algo = small_config(store_buffer_in_checkpoints=True).build_algo()
    assert len(algo.env_runner_group.remote_runners) == 2 and len(algo.replay_shards) == 2
    for _ in range(3):
        result = algo.train()
    sampled = result["num_env_steps_sampled_lifetime"]
    assert sampled >= 1200
    stats = result["learners"]["default_policy"]
    assert np.isfinite(stats["qf_loss"]) and stats["num_updates"] > 0
    # The replay ratio stays near `training_intensity` (4 replayed per sampled step).
    trained = stats["num_module_steps_trained_lifetime"]
    assert 0.5 * 4 * (sampled - 100) <= trained <= 4 * sampled
    # Every fragment reached a shard (adds run in order before the stats call).
    assert result["replay_buffer"]["num_transitions"] == sampled
    assert result["replay_buffer"]["num_shards"] == 2
    obs = np.array([0.01, 0.0, -0.02, 0.0], np.float32)
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    restored = Algorithm.from_checkpoint(path)
    assert type(restored).__name__ == "APEXDQN"
    assert restored.compute_single_action(obs) == algo.compute_single_action(obs)
    # The shards' contents came back with the checkpoint.
    stored = ray.get([s.stats.remote() for s in algo.replay_shards])
    loaded = ray.get([s.stats.remote() for s in restored.replay_shards])
    assert [s["num_transitions"] for s in loaded] == [s["num_transitions"] for s in stored]
    restored.train()
    shards = restored.replay_shards + algo.replay_shards
    runners = restored.env_runner_group.remote_runners + algo.env_runner_group.remote_runners
    restored.stop()
    algo.stop()
    for actor in shards + runners:
        assert_actor_dead(actor)
    deadline = time.monotonic() + 30  # the killed actors' CPUs are reported back lazily
    while ray.available_resources().get("CPU", 0) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.2)
    # The CLI evaluates it (on Ray runners: APEX-DQN has no local mode).
    assert main(["evaluate", path, "--episodes", "1"]) == 0
    with pytest.raises(CheckpointError, match="num_replay_buffer_shards=2"):
        Algorithm.from_checkpoint(
            path, {"num_replay_buffer_shards": 1, "num_cpus_per_env_runner": 0.1}
        )


def test_apex_config_errors():
    with pytest.raises(ConfigError, match="num_env_runners"):
        small_config().env_runners(num_env_runners=0).build_algo()
    with pytest.raises(ConfigError, match="num_replay_buffer_shards"):
        small_config(num_replay_buffer_shards=0).build_algo()
    with pytest.raises(ConfigError, match="apex_epsilon"):
        small_config(apex_epsilon=1.5).build_algo()
    with pytest.raises(ConfigError, match="observation_filter"):
        small_config().env_runners(observation_filter="MeanStdFilter").build_algo()
