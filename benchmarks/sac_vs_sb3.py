"""Time to reach a training return of -250 on Pendulum-v1: scalerl SAC vs Stable-Baselines3 SAC.

What it measures
    For each contender and seed, in a fresh subprocess, the wall time from process start
    until the mean return of the last 10 finished training episodes (2000 env steps) first
    reaches -250, checked every 1000 env steps (after every scalerl iteration; in an SB3
    callback), and the env steps taken. Budget: 20k env steps, rl-zoo's n_timesteps. The
    ratio printed is SB3's median time over each scalerl variant's, in the same run.

Contenders
    scalerl      -- `SACConfig()` defaults ([64, 64] relu actor and twin critics, batch 256,
                    tau 0.005, uniform replay, learning starts at 1000 steps, one update per
                    env step, weights synced every 4 steps) with the zoo's learning rate,
                    1e-3, for actor, critic and alpha (SB3's `learning_rate` sets all three).
    scalerl-256  -- the same with SB3's [256, 256] networks.
    sb3          -- `stable_baselines3.SAC` with the rl-baselines3-zoo `hyperparams/sac.yml`
                    Pendulum-v1 entry (MlpPolicy, learning_rate 1e-3, SB3's defaults
                    otherwise: [256, 256], batch 256, tau 0.005, buffer 1e6, learning_starts
                    100, one update per env step, automatic entropy tuning), with
                    `stats_window_size=10` for the same 10-episode smoothing.

Both use one torch thread. No timing assertions: the script prints a table.

Run
    .venv/bin/python -m pip install -c constraints.txt stable-baselines3   # (`make bench`)
    .venv/bin/python benchmarks/sac_vs_sb3.py [--seeds 0,1,2] [--only scalerl,sb3]
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

from sb3_race import main, report  # noqa: E402

THRESHOLD = -250.0
BUDGET = 20_000
WINDOW = 10  # episodes in the smoothed return
CHECK_EVERY = 1000  # env steps
SCALERL_MODELS = {"scalerl": {}, "scalerl-256": {"fcnet_hiddens": [256, 256]}}


def worker_scalerl(seed: int, model_config: dict) -> None:
    import torch

    torch.set_num_threads(1)
    from scalerl.algorithms.sac import SACConfig

    algo = (
        SACConfig()
        .environment("Pendulum-v1")
        .training(
            actor_lr=1e-3,
            critic_lr=1e-3,
            alpha_lr=1e-3,
            min_sample_timesteps_per_iteration=CHECK_EVERY,
        )
        .rl_module(model_config=model_config)
        .reporting(metrics_num_episodes_for_smoothing=WINDOW)
        .debugging(seed=seed)
        .build_algo()
    )
    ret, steps = -float("inf"), 0
    while steps < BUDGET and ret < THRESHOLD:
        runners = algo.train()["env_runners"]
        ret = runners.get("episode_return_mean", -float("inf"))
        steps = runners["num_env_steps_sampled_lifetime"]
    report(seconds=time.perf_counter() - _T_START, steps=steps, reached=ret >= THRESHOLD)


def worker_sb3(seed: int) -> None:
    import torch

    torch.set_num_threads(1)
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % CHECK_EVERY:
                return True
            buf = self.model.ep_info_buffer
            return not (len(buf) >= WINDOW and sum(e["r"] for e in buf) / len(buf) >= THRESHOLD)

    model = SAC(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        learning_rate=1e-3,
        stats_window_size=WINDOW,
        seed=seed,
        device="cpu",
    )
    model.learn(total_timesteps=BUDGET, callback=StopAt())
    buf = model.ep_info_buffer
    ret = sum(e["r"] for e in buf) / max(1, len(buf))
    report(
        seconds=time.perf_counter() - _T_START,
        steps=model.num_timesteps,
        reached=len(buf) >= WINDOW and ret >= THRESHOLD,
    )


if __name__ == "__main__":
    workers = {
        name: (lambda seed, mc=mc: worker_scalerl(seed, mc)) for name, mc in SCALERL_MODELS.items()
    }
    workers["sb3"] = worker_sb3
    main(__doc__, __file__, workers, THRESHOLD)
