"""Two data-parallel learners (`num_learners=2`, Ray actors) must learn what one local
learner learns: the same thresholds and budgets as the `num_learners=0` learning tests of
PPO, DQN, SAC and multi-agent PPO (each states them). The env runner samples in the
driver; each learner trains on its half of every batch and the gradients are averaged."""

from __future__ import annotations

import pytest
import ray

from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.sac import SACConfig
from scalerl.examples.envs import MultiAgentCartPole

pytestmark = pytest.mark.learning


@pytest.fixture(scope="module", autouse=True)
def ray_two_cpus():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def train_until(algo, threshold: float, budget: int) -> tuple[float, int]:
    """Train until the smoothed training return reaches `threshold` or `budget` env steps
    pass; returns (that return, env steps). Stops the algorithm."""
    ret, steps = -float("inf"), 0
    try:
        while steps < budget and ret < threshold:
            runners = algo.train()["env_runners"]
            ret = runners.get("episode_return_mean", -float("inf"))
            steps = runners["num_env_steps_sampled_lifetime"]
    finally:
        algo.stop()
    print(f"{type(algo).__name__} with 2 learners: {ret:.1f} after {steps} env steps")
    return ret, steps


def test_ppo_cartpole_two_learners_reach_475_within_100k_steps():
    """Threshold: evaluation mean >= 475 over 20 greedy episodes, as PPO's defaults test
    with one learner; budget 100k env steps. Two envs (one env column per learner)."""
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=2)
        .learners(num_learners=2)
        .evaluation(evaluation_duration=20)
        .debugging(seed=0)
        .build_algo()
    )
    steps, final = 0, 0.0
    while steps < 100_000 and final < 475:
        result = algo.train()
        steps = result["num_env_steps_sampled_lifetime"]
        if result["env_runners"].get("episode_return_mean", 0) >= 0.8 * 475:
            final = algo.evaluate()["env_runners"]["episode_return_mean"]
    algo.stop()
    print(f"PPO with 2 learners: evaluation {final:.1f} after {steps} env steps")
    assert final >= 475, (final, steps)


def test_dqn_cartpole_two_learners_reach_450_within_200k_steps():
    """Threshold: smoothed training return >= 450; budget 200k env steps (DQN defaults,
    as `test_dqn_cartpole_reaches_450_within_200k_steps`)."""
    algo = (
        DQNConfig()
        .environment("CartPole-v1")
        .learners(num_learners=2)
        .debugging(seed=0)
        .build_algo()
    )
    ret, steps = train_until(algo, 450.0, 200_000)
    assert ret >= 450.0, (ret, steps)


def test_sac_pendulum_two_learners_reach_minus_250_within_20k_steps():
    """Threshold: mean return of the last 10 training episodes >= -250; budget 20k env
    steps (SAC defaults, as `test_sac_pendulum_reaches_minus_250_within_20k_steps`)."""
    algo = (
        SACConfig()
        .environment("Pendulum-v1")
        .reporting(metrics_num_episodes_for_smoothing=10)
        .learners(num_learners=2)
        .debugging(seed=0)
        .build_algo()
    )
    ret, steps = train_until(algo, -250.0, 20_000)
    assert ret >= -250.0, (ret, steps)


def test_multi_agent_cartpole_two_policies_two_learners_reach_900_within_400k_steps():
    """Threshold: smoothed episode return (sum over both agents) >= 900; budget 400k env
    steps (PPO defaults, 8 envs, as the one-learner multi-agent CartPole test)."""
    algo = (
        PPOConfig()
        .environment(MultiAgentCartPole, env_config={"num_agents": 2})
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, ep, **kw: f"p{aid}")
        .env_runners(num_envs_per_env_runner=8)
        .learners(num_learners=2)
        .debugging(seed=0)
        .build_algo()
    )
    ret, steps = train_until(algo, 900.0, 400_000)
    assert ret >= 900.0, (ret, steps)
