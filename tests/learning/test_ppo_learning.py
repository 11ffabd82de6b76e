"""PPO must learn: each test states its return threshold and its env-step budget.

CartPole with the defaults runs in the default suite (about half a minute); the
longer runs carry the `learning` marker (`make learning`).
"""

import pytest
import ray

from scalerl.algorithms.ppo import PPOConfig
from scalerl.connectors.env_to_module import MeanStdFilter
from scalerl.presets import load_preset


def train_until(algo, stop_return, max_steps, use_evaluation=False):
    """Train until the smoothed training return (or, with `use_evaluation`, the greedy
    evaluation return) reaches `stop_return`, or `max_steps` env steps are used.
    Returns (best return seen, env steps used)."""
    best, steps = float("-inf"), 0
    while steps < max_steps:
        result = algo.train()
        steps = result["num_env_steps_sampled_lifetime"]
        value = result["env_runners"]["episode_return_mean"]
        if use_evaluation and value >= 0.8 * stop_return:
            value = algo.evaluate()["env_runners"]["episode_return_mean"]
        best = max(best, value)
        if value >= stop_return:
            break
    return best, steps


def test_cartpole_defaults_solve_within_100k_steps():
    """Threshold: evaluation mean >= 475 over 20 episodes (explore=False); budget 100k steps."""
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .debugging(seed=0)
        .evaluation(evaluation_duration=20)
        .build_algo()
    )
    best, steps = train_until(algo, 475, 100_000, use_evaluation=True)
    final = algo.evaluate()["env_runners"]
    algo.stop()
    assert steps <= 100_000
    assert final["num_episodes"] == 20
    assert final["episode_return_mean"] >= 475, (best, steps, final["episode_return_mean"])


@pytest.mark.learning
def test_pendulum_with_mean_std_filter_reaches_minus_300_within_400k_steps():
    """Observation normalization on (RLlib's `env_to_module_connector` form) over the
    `pendulum-ppo` preset's settings (PPO with them alone is that preset's test in
    test_presets.py). Threshold: smoothed training return >= -300; budget 400k env steps."""
    algo = (
        load_preset("pendulum-ppo")
        .build_config()
        .env_runners(env_to_module_connector=lambda env: MeanStdFilter())
        .debugging(seed=0)
        .build_algo()
    )
    best, steps = train_until(algo, -300, 400_000)
    # Every sampled observation (plus the first resets) went into the statistics.
    assert algo.obs_filter.running[0].n == steps + 16
    algo.stop()
    print(f"MeanStdFilter Pendulum: best smoothed return {best:.1f} after {steps} env steps")
    assert best >= -300, (best, steps)


def tutorial_config(num_env_runners):
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .framework("torch")
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1)
        .training(lr=0.0003, gamma=0.99, train_batch_size=4000)
    )


@pytest.mark.learning
@pytest.mark.parametrize("num_env_runners", [0, 2])
def test_tutorial_config_reaches_475(num_env_runners):
    """The README/RLlib tutorial config: smoothed return >= 475 within 200k env steps."""
    if num_env_runners:
        ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        algo = tutorial_config(num_env_runners).build_algo()
        best, steps = train_until(algo, 475, 200_000)
        algo.stop()
    finally:
        ray.shutdown()
    assert best >= 475, (best, steps)
