"""PPO with EnvRunners as Ray actors (kept few and short: Ray start-up costs seconds)."""

import pytest
import ray

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_too_many_runners_for_the_cpus_is_a_clear_error(ray_local):
    config = PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=3)
    with pytest.raises(ValueError, match="need 3 CPUs.*num_cpus_per_env_runner"):
        config.build_algo()


def test_two_ray_runners_train_evaluate_save_restore_stop(ray_local, tmp_path, assert_actor_dead):
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.25)
        .training(train_batch_size=400, minibatch_size=100, num_epochs=2)
        .evaluation(evaluation_num_env_runners=1, evaluation_duration=4, evaluation_interval=2)
    )
    algo = config.build_algo()
    assert len(algo.env_runner_group.remote_runners) == 2
    algo.train()
    result = algo.train()
    # 2 runners x 2 envs x fragment ceil(400 / 4) = 100 steps.
    assert result["env_runners"]["num_env_steps_sampled"] == 400
    assert result["num_env_steps_sampled_lifetime"] == 800
    assert result["env_runners"]["num_episodes"] > 0
    assert result["evaluation"]["env_runners"]["num_episodes"] == 4

    # Runners hold the learner's weights after sync.
    weights = algo.learner_group.get_weights()["default_policy"]
    runner = algo.env_runner_group.remote_runners[0]
    remote = ray.get(runner.__ray_call__.remote(lambda self: self.module.state_dict()))
    for name, value in weights.items():
        assert (remote[name].numpy() == value).all(), name

    path = algo.save(tmp_path / "ckpt")
    algo2 = Algorithm.from_checkpoint(path)
    assert algo2.iteration == 2
    assert len(algo2.env_runner_group.remote_runners) == 2
    algo2.train()

    actors = algo.env_runner_group.remote_runners + algo.eval_env_runner_group.remote_runners
    algo.stop()
    algo.stop()
    for actor in actors:
        assert_actor_dead(actor)
    algo2.stop()


def test_lstm_with_two_ray_runners(ray_local):
    """Recurrent fragments (sequence starts, states) from two actors join into one batch."""
    from scalerl.examples.envs import StatelessCartPole

    algo = (
        PPOConfig()
        .environment(StatelessCartPole, env_config={"max_episode_steps": 30})
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.25)
        .training(train_batch_size=200, minibatch_size=50, num_epochs=1)
        .rl_module(model_config={"use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 8})
    )
    algo = algo.build_algo()
    result = algo.train()
    stats = result["learners"]["default_policy"]
    assert stats["num_module_steps_trained"] == 200
    assert result["env_runners"]["num_episodes"] > 0
    algo.stop()


def test_two_ray_runners_merge_observation_filter_stats(ray_local):
    """The driver's filter counts both runners' steps; each runner gets it back at sync."""
    algo = (
        PPOConfig()
        .environment("Pendulum-v1")
        .env_runners(
            num_env_runners=2,
            num_envs_per_env_runner=2,
            num_cpus_per_env_runner=0.25,
            observation_filter="MeanStdFilter",
        )
        .training(train_batch_size=200, minibatch_size=100, num_epochs=1)
        .build_algo()
    )
    try:
        for _ in range(2):
            result = algo.train()
        central = algo.obs_filter.get_state()
        # 2 runners x (2 first resets + 2 iterations x 2 envs x 50 steps).
        assert central["leaves"][0]["n"] == result["num_env_steps_sampled_lifetime"] + 4 == 404
        for runner in algo.env_runner_group.remote_runners:
            remote = ray.get(runner.__ray_call__.remote(lambda self: self.obs_filter.get_state()))
            assert remote == central
            delta = ray.get(runner.__ray_call__.remote(lambda self: self.obs_filter.delta[0].n))
            assert delta == 0  # handed to the driver; nothing counted twice
    finally:
        algo.stop()
