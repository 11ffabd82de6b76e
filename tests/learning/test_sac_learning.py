"""SAC must learn (issue 4): CartPole-v1 with Discrete actions here; Pendulum-v1 (Box
actions) is the `pendulum-sac` preset's test in test_presets.py."""

from __future__ import annotations

import pytest

from scalerl.algorithms.sac import SACConfig

WINDOW = 10  # episodes in the smoothed training return


def steps_to_threshold(algo, threshold: float, budget: int) -> tuple[float, int]:
    """Train until the smoothed training return reaches `threshold` or `budget` env steps
    pass; returns (that return, env steps)."""
    ret, steps = -float("inf"), 0
    while steps < budget and ret < threshold:
        runners = algo.train()["env_runners"]
        ret = runners.get("episode_return_mean", -float("inf"))
        steps = runners["num_env_steps_sampled_lifetime"]
    algo.stop()
    return ret, steps


@pytest.mark.learning
def test_discrete_sac_cartpole_reaches_450_within_100k_steps():
    """Discrete SAC (Christodoulou 2019) on CartPole-v1. Threshold: mean return of the last
    10 training episodes >= 450; budget 100k env steps. Settings (tuned): 3-step returns,
    critic lr 1e-3, a low entropy target (0.05 nats; "auto", 0.98 log 2, keeps the policy
    near uniform) reached from alpha 0.1 with alpha lr 1e-3, one update per 4 env steps
    (training_intensity 64); [64, 64] relu networks, batch 256, tau 0.005.
    Measured: 457.6 at 62k steps (seed 0). Not robust across seeds: seed 2 reached 462 at
    29k steps, seed 1 stayed between 240 and 340 (328.6 at 100k). No setting tried reached
    450 on all three seeds within 100k steps (see the branch report)."""
    algo = (
        SACConfig()
        .environment("CartPole-v1")
        .training(
            n_step=3,
            critic_lr=1e-3,
            target_entropy=0.05,
            initial_alpha=0.1,
            alpha_lr=1e-3,
            training_intensity=64,
        )
        .reporting(metrics_num_episodes_for_smoothing=WINDOW)
        .debugging(seed=0)
        .build_algo()
    )
    ret, steps = steps_to_threshold(algo, 450.0, 100_000)
    assert ret >= 450.0, f"{ret:.1f} after {steps} steps"
