"""SAC end to end (issue 4): Box actions (Pendulum) and Discrete actions (CartPole), the
metrics, acting, evaluation, checkpoints with three optimizers, log alpha and the target
critics, and the configuration errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.sac import SAC, SACConfig
from scalerl.utils.errors import ConfigError

SMALL = dict(
    train_batch_size=32,
    num_steps_sampled_before_learning_starts=64,
    min_sample_timesteps_per_iteration=64,
)
LEARNER_METRICS = {
    "qf_loss",
    "policy_loss",
    "alpha_loss",
    "alpha_value",
    "log_alpha_value",
    "target_entropy",
    "qf_mean",
    "qf_max",
    "qf_min",
    "td_error_mean",
    "logps",
    "curr_actor_lr",
    "curr_critic_lr",
    "curr_alpha_lr",
    "gradients_actor_global_norm",
    "gradients_critic_global_norm",
    "gradients_alpha_global_norm",
    "num_module_steps_trained",
}


def config(env: str = "Pendulum-v1", **training) -> SACConfig:
    return (
        SACConfig()
        .environment(env)
        .training(**{**SMALL, **training})
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )


def learner_state(algo: SAC) -> dict[str, torch.Tensor]:
    learner = algo.learner_group.get_local_learner()
    return {
        **{f"module/{k}": v.clone() for k, v in learner.module.state_dict().items()},
        **{k: v.clone() for k, v in learner.state_tensors().items()},
    }


@pytest.mark.parametrize(
    "env, training",
    [
        ("Pendulum-v1", {}),
        ("CartPole-v1", {}),
        (
            "Pendulum-v1",
            {"n_step": 3, "twin_q": False, "replay_buffer_config": {"type": "prioritized"}},
        ),
    ],
    ids=["box", "discrete", "box-prioritized-3-step-single-q"],
)
def test_train_act_evaluate_checkpoint(env, training, tmp_path):
    algo = (
        config(env, **training)
        .evaluation(evaluation_interval=2, evaluation_duration=1)
        .build_algo()
    )
    algo.train()
    result = algo.train()
    stats = result["learners"]["default_policy"]
    assert LEARNER_METRICS <= set(stats), LEARNER_METRICS - set(stats)
    assert all(np.isfinite(v) for v in stats.values())
    assert stats["num_module_steps_trained"] == 64 * 32  # one update per sampled step
    assert result["replay_buffer"]["num_transitions"] == 128
    assert result["evaluation"]["env_runners"]["num_episodes"] == 1
    learner = algo.learner_group.get_local_learner()
    assert stats["alpha_value"] != 1.0  # the temperature is learned
    # The EnvRunner acts with the learner's current policy.
    runner_state = algo.env_runner_group.local_runner.module.get_policy_state()
    for k, v in learner.module.get_policy_state().items():
        np.testing.assert_array_equal(runner_state[k], v)

    space = algo.get_module().action_space
    obs, _ = gym.make(env).reset(seed=0)
    greedy = algo.compute_single_action(obs)
    assert space.contains(np.asarray(greedy, dtype=space.dtype))
    assert greedy == pytest.approx(algo.compute_single_action(obs))  # deterministic
    explored = [algo.compute_single_action(obs, explore=True) for _ in range(20)]
    assert all(space.contains(np.asarray(a, dtype=space.dtype)) for a in explored)
    assert len({np.asarray(a).tobytes() for a in explored}) > 1  # sampled

    # Checkpoint: weights, log alpha, three optimizers and the target critics round-trip.
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    restored = Algorithm.from_checkpoint(path)
    assert isinstance(restored, SAC)
    before, after = learner_state(algo), learner_state(restored)
    assert before.keys() == after.keys()
    for key in before:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=0, msg=key)
    r_learner = restored.learner_group.get_local_learner()
    assert r_learner.optimizer_hyperparameters() == learner.optimizer_hyperparameters()
    assert r_learner.optimizers["critic"].t == 68  # one per env step from the fragment ending at 64
    assert r_learner.last_target_update == learner.last_target_update
    assert restored.compute_single_action(obs) == pytest.approx(greedy)
    # Training continues from there, in the restored algorithm and the original alike.
    result = restored.train()
    assert result["num_env_steps_sampled_lifetime"] == 192
    assert r_learner.optimizers["actor"].t == 68 + 64
    assert not torch.equal(learner_state(restored)["log_alpha"], before["log_alpha"])
    restored.stop()
    algo.stop()


def test_target_critics_follow_by_polyak_averaging():
    """theta' <- tau theta + (1 - tau) theta' after each update, over the flat buffers."""
    algo = config(tau=0.25, num_steps_sampled_before_learning_starts=100).build_algo()
    learner = algo.learner_group.get_local_learner()
    start = learner.target_params.clone()
    algo.train()  # 64 steps: no update yet
    torch.testing.assert_close(learner.target_params, start, rtol=0, atol=0)
    algo.train()
    target = learner.target_params.clone()
    batch = algo.replay_buffer.sample(32, np.random.default_rng(0))
    learner.update(batch, algo.num_env_steps_sampled_lifetime)
    critic = learner.optimizers["critic"].flat_param
    torch.testing.assert_close(learner.target_params, target + 0.25 * (critic - target))
    # The flat buffer is what the target critics compute with.
    for p, q in zip(learner.target_qf.parameters(), learner.module.qf.parameters()):
        assert p.shape == q.shape and not torch.equal(p, q)
    algo.stop()


@pytest.mark.parametrize(
    "training, match",
    [
        ({"tau": 0.0}, "`tau`"),
        ({"tau": 1.5}, "`tau`"),
        ({"target_entropy": "max"}, "`target_entropy`"),
        ({"initial_alpha": 0.0}, "`initial_alpha`"),
        ({"replay_buffer_config": {"type": "reservoir"}}, "replay_buffer_config"),
        ({"replay_buffer_config": {"type": "uniform", "size": 10}}, "unknown keys"),
        ({"lr": 1e-3}, "actor_lr"),
        ({"actor_lr": "fast"}, "`actor_lr`"),
        ({"n_step": 0}, "`n_step`"),
        ({"training_intensity": -1}, "`training_intensity`"),
    ],
)
def test_config_errors(training, match):
    with pytest.raises(ConfigError, match=match):
        config(**training).build_algo()


def test_action_spaces_sac_cannot_serve():
    with pytest.raises(ConfigError, match="Box .*or a Discrete action space; got MultiDiscrete"):
        config().environment(
            "CartPole-v1", action_space=gym.spaces.MultiDiscrete([2, 2])
        ).build_algo()
    unbounded = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    with pytest.raises(ConfigError, match="unbounded"):
        config().environment("Pendulum-v1", action_space=unbounded).build_algo()
    with pytest.raises(ConfigError, match="normalize_actions"):
        config().environment("Pendulum-v1", normalize_actions=False).build_algo()


def test_image_observations_train_through_autograd():
    """A CNN observation encoder: actor and critics each have
    their own CNN, and the target critics copy the critic's."""
    from scalerl.examples.envs.image_env import ImageTargetEnv

    algo = (
        config()
        .environment(ImageTargetEnv, env_config={"size": 8})
        .rl_module(model_config={"fcnet_hiddens": [16], "conv_filters": [[4, 3, 2]]})
        .build_algo()
    )
    learner = algo.learner_group.get_local_learner()
    assert learner.module.pi_pre.has_params and learner.module.qf.pre.has_params
    actor_cnn = [p.clone() for p in learner.module.pi_pre.parameters()]
    algo.train()
    stats = algo.train()["learners"]["default_policy"]
    assert np.isfinite(stats["qf_loss"]) and np.isfinite(stats["policy_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(actor_cnn, learner.module.pi_pre.parameters()))
    assert len(learner.target_params) == len(learner.optimizers["critic"].flat_param)
    algo.stop()


def test_ray_env_runners_act_with_the_synced_policy():
    """Remote EnvRunners receive the policy's weights only (read-only arrays from Ray)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        algo = config().env_runners(num_env_runners=1, num_cpus_per_env_runner=0.5).build_algo()
        algo.train()
        result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] == 128
        assert np.isfinite(result["learners"]["default_policy"]["qf_loss"])
        runner = algo.env_runner_group.remote_runners[0]
        remote = ray.get(runner.__ray_call__.remote(lambda self: self.module.get_policy_state()))
        for k, v in algo.learner_group.get_local_learner().module.get_policy_state().items():
            np.testing.assert_array_equal(remote[k], v)
        algo.stop()
    finally:
        ray.shutdown()


@pytest.mark.parametrize("intensity", [1.0, 8.0])
def test_training_intensity_is_replayed_over_sampled_transitions(intensity, count_updates):
    """The same meaning as DQN's (and RLlib's): replayed / sampled transitions."""
    algo = config(training_intensity=intensity, min_sample_timesteps_per_iteration=1000)
    algo = algo.build_algo()
    updates = count_updates(algo.learner_group.get_local_learner())
    for _ in range(2):
        algo.train()
    cfg = algo.config
    sampled = algo.num_env_steps_sampled_lifetime - cfg.num_steps_sampled_before_learning_starts
    replayed = updates[0] * cfg.train_batch_size
    assert replayed / sampled == pytest.approx(intensity, rel=0.05)
    algo.stop()
