"""R2D2 must learn where memory is needed (issue 4): stateless CartPole (CartPole-v1
without the velocities), RLlib's tuned R2D2 example, whose threshold is 150."""

from __future__ import annotations

import pytest

from scalerl.algorithms.r2d2 import R2D2Config
from scalerl.examples.envs import StatelessCartPole

THRESHOLD, BUDGET = 150.0, 200_000  # smoothed training return, env steps


@pytest.mark.learning
def test_r2d2_stateless_cartpole_reaches_150_within_200k_steps():
    """Threshold: smoothed training return (last 100 episodes, epsilon-greedy) >= 150;
    budget 200k env steps. Defaults (LSTM 64 with a_{t-1}, r_{t-1}; sequences of burn-in 20
    + 20 trained steps from the stored state; 3-step double-Q targets under h; prioritized
    sequence replay) with 8 envs. Measured: 151 at 44k steps (seed 0, 81 s on a shared
    2-core machine; seeds 1, 2: 47k, 52k). Run on to 200k steps, seed 0 peaked at 313 (80k)
    and stayed in 200-290."""
    algo = (
        R2D2Config()
        .environment(StatelessCartPole)
        .env_runners(num_envs_per_env_runner=8)
        .debugging(seed=0)
        .build_algo()
    )
    ret, steps = 0.0, 0
    while steps < BUDGET and ret < THRESHOLD:
        runners = algo.train()["env_runners"]
        ret = runners.get("episode_return_mean", 0.0)
        steps = runners["num_env_steps_sampled_lifetime"]
    algo.stop()
    assert ret >= THRESHOLD, f"{ret:.1f} after {steps} steps"
