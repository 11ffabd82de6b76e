"""PPO end to end in local mode: build, train, evaluate, act, across space kinds."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.algorithms.ppo import PPOConfig
from scalerl.env.registry import register_env

SMALL = dict(train_batch_size=256, minibatch_size=64, num_epochs=2)

RESULT_KEYS = {
    "env_runners": {
        "episode_return_mean",
        "episode_return_max",
        "episode_return_min",
        "episode_len_mean",
        "num_episodes",
        "num_env_steps_sampled",
        "num_env_steps_sampled_lifetime",
    },
    "learners/default_policy": {
        "total_loss",
        "policy_loss",
        "vf_loss",
        "entropy",
        "mean_kl_loss",
        "curr_lr",
    },
}


def test_train_result_dict_has_rllib_keys():
    algo = PPOConfig().environment("CartPole-v1").training(**SMALL).build_algo()
    r1 = algo.train()
    r2 = algo.train()
    assert RESULT_KEYS["env_runners"] <= set(r2["env_runners"])
    assert RESULT_KEYS["learners/default_policy"] <= set(r2["learners"]["default_policy"])
    for key in (
        "timers",
        "training_iteration",
        "num_env_steps_sampled_lifetime",
        "time_this_iter_s",
        "time_total_s",
    ):
        assert key in r2
    assert r2["training_iteration"] == 2
    assert (
        r2["num_env_steps_sampled_lifetime"]
        == 512
        == r2["env_runners"]["num_env_steps_sampled_lifetime"]
    )
    assert r1["env_runners"]["num_env_steps_sampled"] == 256
    assert r2["time_total_s"] >= r2["time_this_iter_s"] > 0
    assert np.isfinite(r2["learners"]["default_policy"]["total_loss"])
    assert r2["learners"]["default_policy"]["curr_lr"] == pytest.approx(3e-4)
    algo.stop()
    algo.stop()  # idempotent


def test_evaluation_interval_adds_evaluation_results():
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(**SMALL)
        .evaluation(evaluation_interval=2, evaluation_duration=3)
        .build_algo()
    )
    assert "evaluation" not in algo.train()
    result = algo.train()
    ev = result["evaluation"]["env_runners"]
    assert ev["num_episodes"] == 3
    assert len(ev["episode_returns"]) == 3
    assert ev["episode_return_min"] <= ev["episode_return_mean"] <= ev["episode_return_max"]
    steps = algo.evaluate()
    assert steps["env_runners"]["num_episodes"] == 3
    algo.stop()


def test_evaluation_by_timesteps():
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(**SMALL)
        .evaluation(evaluation_duration=50, evaluation_duration_unit="timesteps")
        .build_algo()
    )
    ev = algo.evaluate()["env_runners"]
    assert ev["num_env_steps_sampled"] >= 50
    algo.stop()


def test_compute_single_action_and_module_forward():
    algo = PPOConfig().environment("CartPole-v1").training(**SMALL).debugging(seed=3).build_algo()
    algo.train()
    obs, _ = gym.make("CartPole-v1").reset(seed=0)
    module = algo.get_module()
    out = module.forward_inference({"obs": torch.tensor(np.array([obs]), dtype=torch.float32)})
    greedy = out["action_dist_inputs"].argmax(dim=-1).item()
    action = algo.compute_single_action(obs)
    assert action == greedy and isinstance(action, int)
    assert algo.compute_single_action(obs, explore=True) in (0, 1)
    batch = algo.compute_actions(np.stack([obs, obs]))
    assert batch.shape == (2,) and batch[0] == greedy
    assert algo.compute_actions({"a": obs}) == {"a": greedy}
    with pytest.raises(ValueError, match="default_policy"):
        algo.get_module("default_polcy")
    algo.stop()


def test_box_actions_are_unsquashed_into_bounds():
    algo = PPOConfig().environment("Pendulum-v1").training(**SMALL).build_algo()
    result = algo.train()
    assert result["env_runners"]["num_env_steps_sampled"] == 256
    space = gym.make("Pendulum-v1").action_space
    obs, _ = gym.make("Pendulum-v1").reset(seed=0)
    for explore in (False, True):
        action = algo.compute_single_action(obs, explore=explore)
        assert action.shape == (1,) and space.contains(action)
    algo.stop()


def test_discrete_observations_are_one_hot_encoded():
    algo = (
        PPOConfig()
        .environment("FrozenLake-v1", env_config={"is_slippery": False})
        .training(**SMALL)
        .build_algo()
    )
    algo.train()
    assert algo.compute_single_action(0) in range(4)
    algo.stop()


class _ShortEnv(gym.Env):
    """Counts to `length` then truncates; reward 1 per step."""

    observation_space = gym.spaces.Box(-1.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        self.length = (config or {}).get("length", 5)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, False, self.t >= self.length, {}


def test_env_class_and_registered_creator():
    algo = (
        PPOConfig().environment(_ShortEnv, env_config={"length": 4}).training(**SMALL).build_algo()
    )
    result = algo.train()
    assert result["env_runners"]["episode_len_mean"] == 4
    assert result["env_runners"]["num_episodes"] == 64
    algo.stop()
    register_env("short-env", lambda cfg: _ShortEnv(cfg))
    algo = (
        PPOConfig()
        .environment("short-env", env_config={"length": 8})
        .training(**SMALL)
        .build_algo()
    )
    assert algo.train()["env_runners"]["episode_return_mean"] == 8
    algo.stop()


def test_truncation_is_recorded_for_bootstrapping():
    algo = (
        PPOConfig()
        .environment(_ShortEnv, env_config={"length": 3})
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=6)
        .training(train_batch_size=12, minibatch_size=12, num_epochs=1)
        .build_algo()
    )
    batch, metrics = algo.env_runner_group.local_runner.sample()
    assert batch["obs"].shape == (6, 2, 1)
    # Episodes end at t = 2 and 5 in both envs; all are truncations with final obs [3].
    assert sorted(map(tuple, batch["trunc_index"])) == [(2, 0), (2, 1), (5, 0), (5, 1)]
    assert np.all(batch["trunc_obs"] == 3.0)
    assert not batch["terminateds"].any()
    assert metrics["episode_lens"] == [3, 3, 3, 3]
    algo.stop()


def test_clip_rewards():
    algo = (
        PPOConfig()
        .environment(_ShortEnv)
        .environment(clip_rewards=0.5)
        .training(**SMALL)
        .build_algo()
    )
    batch, metrics = algo.env_runner_group.local_runner.sample()
    assert np.all(batch["rewards"] == 0.5)
    assert metrics["episode_returns"][0] == 5.0  # stats report the env's own rewards
    algo.stop()
