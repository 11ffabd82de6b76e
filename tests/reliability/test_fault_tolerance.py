"""Fault tolerance (issue 11): runners killed, envs that raise or stall, clear errors when
it is off, and resuming from a checkpoint where the run left off.

The local tests need no Ray. The Ray tests share one small Ray instance and are kept
short: every runner restart starts a new worker process (about 1-2 s here).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import ray
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.env.multi_agent_env import make_multi_agent
from scalerl.env.registry import register_env
from scalerl.examples.envs import CartPoleCrashing
from scalerl.utils.errors import EnvError, EnvRunnerError

register_env("crashing-cartpole", lambda cfg: CartPoleCrashing(cfg))
MultiCrashing = make_multi_agent("crashing-cartpole")


def ppo(env=CartPoleCrashing, env_config=None, batch: int = 200, **env_runners) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config=env_config or {})
        .env_runners(**env_runners)
        .training(train_batch_size=batch, minibatch_size=batch // 2, num_epochs=1)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .fault_tolerance(delay_between_env_runner_restarts_s=0.0)
        .debugging(seed=0)
    )


def num_faults(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


# -- local mode ---------------------------------------------------------------------------
def test_env_that_raises_is_an_env_error_naming_env_and_sub_env():
    algo = ppo(env_config={"crash_at_step": 30}, num_envs_per_env_runner=2).build_algo()
    with pytest.raises(
        EnvError,
        match=r"CartPoleCrashing.*sub-env 0 of the local EnvRunner.*"
        r"RuntimeError in step\(\).*restart_failed_sub_environments",
    ) as e:
        algo.train()
    assert isinstance(e.value.__cause__, RuntimeError)
    algo.stop()


def test_env_failing_in_1_percent_of_steps_is_recreated_in_local_mode(tmp_path):
    log = tmp_path / "faults"
    env_config = {"p_crash": 0.01, "p_crash_reset": 0.01, "fault_log": str(log), "seed": 1}
    algo = (
        ppo(env_config=env_config, batch=500, num_envs_per_env_runner=2)
        .fault_tolerance(restart_failed_sub_environments=True)
        .build_algo()
    )
    for _ in range(6):
        result = algo.train()
    runners = result["env_runners"]
    assert result["num_env_steps_sampled_lifetime"] == 6 * 500
    assert runners["num_env_steps_sampled"] == 500
    # Every fault (in step or reset) was one env restart, and none went unnoticed.
    assert runners["num_sub_env_restarts_lifetime"] == num_faults(log) >= 15
    assert result["env_runner_group"] == {
        "num_healthy_env_runners": 1,
        "num_remote_env_runner_restarts": 0,
    }
    assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    algo.stop()


def test_cut_episode_is_a_truncation_with_zero_reward_and_is_not_reported(tmp_path):
    """The failed step ends the episode as a truncation that bootstraps from the
    observation it acted on; the episode is left out of the metrics."""
    env_config = {"crash_at_step": 7, "once_file": str(tmp_path / "once")}
    algo = (
        ppo(env_config=env_config, batch=40)
        .fault_tolerance(restart_failed_sub_environments=True)
        .build_algo()
    )
    batch, metrics = algo.env_runner_group.local_runner.sample(40)
    assert metrics["num_sub_env_restarts"] == 1
    t = 6  # the 7th step raised
    assert batch["rewards"][t, 0] == 0.0 and batch["truncateds"][t, 0]
    assert not batch["terminateds"][t, 0]
    assert batch["trunc_index"].tolist() == [[t, 0]]
    np.testing.assert_array_equal(batch["trunc_obs"][0], batch["obs"][t, 0])
    rewards = np.delete(batch["rewards"][:, 0], t)
    assert (rewards == 1.0).all()
    # Only the episodes that ended on their own are reported.
    assert len(metrics["episode_returns"]) == batch["terminateds"][:, 0].sum()
    algo.stop()


def test_multi_agent_env_failing_is_recreated_in_local_mode(tmp_path):
    log = tmp_path / "faults"
    algo = (
        ppo(MultiCrashing, {"num_agents": 2, "p_crash": 0.02, "fault_log": str(log), "seed": 2})
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, ep, **kw: f"p{aid}")
        .fault_tolerance(restart_failed_sub_environments=True)
        .build_algo()
    )
    for _ in range(3):
        result = algo.train()
    assert result["num_env_steps_sampled_lifetime"] == 600
    assert result["env_runners"]["num_sub_env_restarts_lifetime"] == num_faults(log) > 0
    assert sorted(result["learners"]) == ["p0", "p1"]
    algo.stop()


def weights(algo: Algorithm) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in algo.get_module().state_dict().items()}


def test_restored_run_continues_as_the_straight_run(tmp_path):
    """Train 2 + save + restore + train 2 == train 4 with the episodes restarted after
    iteration 2 (what a restore does: episodes in progress cannot be stored), bit for
    bit. Every RNG (actions, env resets, minibatch shuffles) continues from the
    checkpoint, so the first episodes are not replayed."""
    config = ppo("CartPole-v1", batch=256, num_envs_per_env_runner=2)
    straight = config.build_algo()
    for _ in range(2):
        straight.train()
    group = straight.env_runner_group
    group.set_state(group.get_state())  # restart the episodes, keep every RNG
    for _ in range(2):
        expected = straight.train()

    first = config.build_algo()
    for _ in range(2):
        first.train()
    path = first.save(tmp_path / "ckpt").checkpoint.path
    assert (Path(path) / "env_runner_state.json").is_file()
    first.stop()
    resumed = Algorithm.from_checkpoint(path)
    for _ in range(2):
        result = resumed.train()

    assert result["training_iteration"] == expected["training_iteration"] == 4
    assert result["num_env_steps_sampled_lifetime"] == 4 * 256
    assert (
        result["env_runners"]["episode_return_mean"]
        == expected["env_runners"]["episode_return_mean"]
    )
    for name, value in weights(straight).items():
        assert torch.equal(weights(resumed)[name], value), name

    for algo in (straight, resumed):
        algo.stop()


def test_checkpoint_before_any_sampling_restores_a_fresh_run(tmp_path):
    """Envs never reset have no RNG to restore: they keep their seeds, so a checkpoint
    taken right after build resumes as the fresh run."""
    config = ppo("CartPole-v1")
    fresh = config.build_algo()
    path = fresh.save(tmp_path / "ckpt").checkpoint.path
    fresh.train()
    resumed = Algorithm.from_checkpoint(path)
    resumed.train()
    for name, value in weights(fresh).items():
        assert torch.equal(weights(resumed)[name], value), name
    fresh.stop()
    resumed.stop()


def test_checkpoint_without_env_runner_state_is_fine(tmp_path):
    """Checkpoints written before the runner state was stored restore without it."""
    from scalerl.utils.checkpoints import open_checkpoint

    algo = ppo("CartPole-v1").build_algo()
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    view = open_checkpoint(path, "Algorithm")
    assert view.has("env_runner_state.json")
    before = algo.env_runner_group.get_state()
    algo.set_env_runner_state(view, "no_such_file.json")
    assert algo.env_runner_group.get_state() == before
    algo.stop()


# -- Ray runners --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def runner_pid(actor) -> int:
    return ray.get(actor.__ray_call__.remote(lambda self: os.getpid()))


def test_runners_killed_5_times_in_20_iterations(ray_local, assert_actor_dead):
    """4 x `ray.kill` and 1 x SIGKILL of a training runner's process, and one kill of the
    evaluation runner: every iteration still gets its full batch."""
    algo = (
        ppo("CartPole-v1", batch=100, num_env_runners=2, num_cpus_per_env_runner=0.5)
        .evaluation(evaluation_num_env_runners=1, evaluation_interval=10, evaluation_duration=2)
        .build_algo()
    )
    kills = {2: "ray.kill", 5: "SIGKILL", 9: "ray.kill", 13: "ray.kill", 17: "ray.kill"}
    for i in range(20):
        if i in kills:
            victim = algo.env_runner_group.remote_runners[i % 2]
            if kills[i] == "SIGKILL":
                os.kill(runner_pid(victim), signal.SIGKILL)
            else:
                ray.kill(victim)
            assert_actor_dead(victim)
        if i == 19:
            ray.kill(algo.eval_env_runner_group.remote_runners[0])
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] == 100, i
    assert result["num_env_steps_sampled_lifetime"] == 20 * 100
    assert result["env_runner_group"] == {
        "num_healthy_env_runners": 2,
        "num_remote_env_runner_restarts": 5,
    }
    evaluation = result["evaluation"]
    assert evaluation["env_runners"]["num_episodes"] == 2
    assert evaluation["env_runner_group"]["num_remote_env_runner_restarts"] == 1
    # The replacements sample with the learner's current weights.
    learner = algo.learner_group.get_weights()["default_policy"]
    for runner in algo.env_runner_group.remote_runners:
        remote = ray.get(runner.__ray_call__.remote(lambda self: self.module.state_dict()))
        assert all((remote[k].numpy() == v).all() for k, v in learner.items())
    algo.stop()


def test_runner_killed_while_sampling(ray_local):
    """A SIGKILL in the middle of a fragment: the lost fragment is sampled again."""
    import threading

    slow = {"p_stall": 1.0, "stall_s": 0.01}  # 50-step fragments take about 0.5 s
    algo = ppo(env_config=slow, batch=100, num_env_runners=2, num_cpus_per_env_runner=0.5)
    algo = algo.build_algo()
    algo.train()
    pid = runner_pid(algo.env_runner_group.remote_runners[0])
    timer = threading.Timer(0.2, os.kill, (pid, signal.SIGKILL))
    timer.start()
    result = algo.train()
    timer.join()
    assert result["env_runners"]["num_env_steps_sampled"] == 100
    assert result["env_runner_group"]["num_remote_env_runner_restarts"] == 1
    algo.stop()


def test_env_failing_in_1_percent_of_steps_with_ray_runners(ray_local, tmp_path):
    log = tmp_path / "faults"
    algo = (
        ppo(
            env_config={"p_crash": 0.01, "fault_log": str(log), "seed": 3},
            batch=400,
            num_env_runners=2,
            num_envs_per_env_runner=2,
            num_cpus_per_env_runner=0.5,
        )
        .fault_tolerance(restart_failed_sub_environments=True)
        .build_algo()
    )
    for _ in range(5):
        result = algo.train()
    assert result["num_env_steps_sampled_lifetime"] == 5 * 400
    assert result["env_runners"]["num_sub_env_restarts_lifetime"] == num_faults(log) >= 8
    assert result["env_runner_group"]["num_remote_env_runner_restarts"] == 0
    algo.stop()


def test_env_error_in_a_runner_replaces_the_runner(ray_local, tmp_path):
    """Without sub-env restarts, an env that raises takes its runner down: a new runner
    replaces it and a healthy one samples the lost fragment."""
    env_config = {"crash_at_step": 60, "once_file": str(tmp_path / "once")}
    algo = ppo(env_config=env_config, batch=100, num_env_runners=2, num_cpus_per_env_runner=0.5)
    algo = algo.build_algo()
    for _ in range(3):
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] == 100
    assert result["env_runner_group"]["num_remote_env_runner_restarts"] == 1
    algo.stop()


def test_stalled_runner_is_replaced(ray_local, tmp_path):
    # Step 70 of an env: in the second iteration (fragments of 50 steps).
    env_config = {"stall_at_step": 70, "stall_s": 60.0, "once_file": str(tmp_path / "once")}
    algo = (
        ppo(
            env_config=env_config,
            batch=100,
            num_env_runners=2,
            num_cpus_per_env_runner=0.5,
            sample_timeout_s=4.0,
        )
        .fault_tolerance(env_runner_health_probe_timeout_s=1.0)
        .build_algo()
    )
    algo.train()
    result = algo.train()
    assert (tmp_path / "once").exists()  # it did stall
    assert result["env_runners"]["num_env_steps_sampled"] == 100
    assert result["env_runner_group"] == {
        "num_healthy_env_runners": 2,
        "num_remote_env_runner_restarts": 1,
    }
    assert result["time_this_iter_s"] < 30
    algo.stop()


def test_without_restarts_failures_are_ignored_or_raised_clearly(ray_local, assert_actor_dead):
    config = ppo("CartPole-v1", batch=100, num_env_runners=2, num_cpus_per_env_runner=0.5)
    config.fault_tolerance(restart_failed_env_runners=False, ignore_env_runner_failures=True)
    algo = config.build_algo()
    victim = algo.env_runner_group.remote_runners[1]
    ray.kill(victim)
    assert_actor_dead(victim)
    for _ in range(2):
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] == 100  # the other one samples more
    assert result["env_runner_group"] == {
        "num_healthy_env_runners": 1,
        "num_remote_env_runner_restarts": 0,
    }
    victim = algo.env_runner_group.remote_runners[0]
    ray.kill(victim)
    assert_actor_dead(victim)
    with pytest.raises(EnvRunnerError, match="All 2 EnvRunners failed in sample()"):
        algo.train()
    algo.stop()

    # Both off: the error names the runner, the cause and the settings. A stall is
    # such a failure too (a timeout is not a ConfigError).
    stalling = {"stall_at_step": 20, "stall_s": 30.0, "crash_on_worker_indices": [2]}
    algo = (
        ppo(env_config=stalling, batch=100, num_env_runners=2, num_cpus_per_env_runner=0.5)
        .env_runners(sample_timeout_s=4.0)
        .fault_tolerance(restart_failed_env_runners=False, env_runner_health_probe_timeout_s=1.0)
        .build_algo()
    )
    with pytest.raises(
        EnvRunnerError,
        match=r"EnvRunner 2 failed in sample\(\): it stalled: no answer within "
        r"`sample_timeout_s=4.0`.*restart_failed_env_runners=True.*ignore_env_runner_failures",
    ):
        algo.train()
    algo.stop()


def test_apex_dqn_replaces_a_killed_runner(ray_local, assert_actor_dead):
    from scalerl.algorithms.apex_dqn import APEXDQNConfig

    algo = (
        APEXDQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5, rollout_fragment_length=20)
        .training(
            num_steps_sampled_before_learning_starts=100,
            min_sample_timesteps_per_iteration=200,
            replay_buffer_config={"capacity": 5000},
        )
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .fault_tolerance(delay_between_env_runner_restarts_s=0.0)
        .build_algo()
    )
    algo.train()
    victim = algo.env_runner_group.remote_runners[0]
    ray.kill(victim)
    assert_actor_dead(victim)
    for _ in range(2):
        result = algo.train()
    assert result["env_runner_group"] == {
        "num_healthy_env_runners": 2,
        "num_remote_env_runner_restarts": 1,
    }
    assert victim not in algo._steps_since_sync and len(algo._steps_since_sync) == 2
    assert result["num_env_steps_sampled_lifetime"] >= 600
    algo.stop()


# -- long variant (-m reliability) --------------------------------------------------------
@pytest.mark.reliability
def test_long_run_with_20_random_kills_and_crashing_envs(ray_local, tmp_path, assert_actor_dead):
    """100 iterations; 20 runner kills at random iterations (every 4th a SIGKILL of the
    process); envs raise in 1% of steps and 0.5% of resets and are recreated."""
    log = tmp_path / "faults"
    env_config = {"p_crash": 0.01, "p_crash_reset": 0.005, "fault_log": str(log), "seed": 4}
    algo = (
        ppo(env_config=env_config, batch=200, num_env_runners=2, num_cpus_per_env_runner=0.5)
        .env_runners(num_envs_per_env_runner=2)
        .fault_tolerance(restart_failed_sub_environments=True)
        .build_algo()
    )
    rng = np.random.default_rng(0)
    kill_at = sorted(rng.choice(np.arange(1, 100), size=20, replace=False).tolist())
    for i in range(100):
        if i in kill_at:
            k = kill_at.index(i)
            victim = algo.env_runner_group.remote_runners[int(rng.integers(2))]
            if k % 4 == 3:
                os.kill(runner_pid(victim), signal.SIGKILL)
            else:
                ray.kill(victim)
            assert_actor_dead(victim)
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] == 200, i
    assert result["num_env_steps_sampled_lifetime"] == 100 * 200
    assert result["env_runner_group"] == {
        "num_healthy_env_runners": 2,
        "num_remote_env_runner_restarts": 20,
    }
    # Kills fall between iterations, so every logged fault was also reported.
    assert result["env_runners"]["num_sub_env_restarts_lifetime"] == num_faults(log) >= 100
    print(
        f"kills survived: 20 (5 SIGKILL); env faults survived: {num_faults(log)} in "
        f"{100 * 200} env steps"
    )
    algo.stop()
