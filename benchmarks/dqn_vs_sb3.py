"""Time to reach a training return of 450 on CartPole-v1: scalerl DQN vs Stable-Baselines3 DQN.

What it measures
    For each contender and seed, in a fresh subprocess, the wall time from process start
    until the mean return of the last 100 finished training episodes first reaches 450
    (checked after every scalerl iteration, and in an SB3 callback every 1000 steps), and
    the env steps taken. A run that does not get there within 200k env steps is "not
    reached". The ratio printed is SB3's median time over scalerl's, in the same run.

Contenders
    scalerl -- `DQNConfig()` defaults (double Q, dueling, prioritized replay, [256] relu
               network, lr 5e-4, batch 32, one update per 4 env steps).
    sb3     -- `stable_baselines3.DQN` with the rl-baselines3-zoo `hyperparams/dqn.yml`
               CartPole-v1 entry (lr 2.3e-3, batch 64, buffer 1e5, learning_starts 1000,
               gamma 0.99, target_update_interval 10, train_freq 256, gradient_steps 128,
               epsilon 1 -> 0.04 over the first 8000 steps (the zoo's 0.16 of 5e4),
               net_arch [256, 256]); its budget is raised from the zoo's 5e4 to 200k steps.

Both children use one torch thread. No timing assertions: the script prints a table.

Run
    .venv/bin/python -m pip install -c constraints.txt stable-baselines3   # (`make bench`)
    .venv/bin/python benchmarks/dqn_vs_sb3.py [--seeds 0,1,2]
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

from sb3_race import main, report  # noqa: E402

THRESHOLD = 450.0
BUDGET = 200_000


def worker_scalerl(seed: int) -> None:
    import torch

    torch.set_num_threads(1)
    from scalerl.algorithms.dqn import DQNConfig

    algo = DQNConfig().environment("CartPole-v1").debugging(seed=seed).build_algo()
    ret, steps = 0.0, 0
    while steps < BUDGET and ret < THRESHOLD:
        runners = algo.train()["env_runners"]
        ret = runners.get("episode_return_mean", 0.0)
        steps = runners["num_env_steps_sampled_lifetime"]
    report(seconds=time.perf_counter() - _T_START, steps=steps, reached=ret >= THRESHOLD)


def worker_sb3(seed: int) -> None:
    import torch

    torch.set_num_threads(1)
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 1000:
                return True
            buf = self.model.ep_info_buffer
            return not (len(buf) >= 10 and sum(e["r"] for e in buf) / len(buf) >= THRESHOLD)

    model = DQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=8000 / BUDGET,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        device="cpu",
    )
    model.learn(total_timesteps=BUDGET, callback=StopAt())
    buf = model.ep_info_buffer
    ret = sum(e["r"] for e in buf) / max(1, len(buf))
    report(
        seconds=time.perf_counter() - _T_START,
        steps=model.num_timesteps,
        reached=ret >= THRESHOLD,
    )


if __name__ == "__main__":
    main(__doc__, __file__, {"scalerl": worker_scalerl, "sb3": worker_sb3}, THRESHOLD)
