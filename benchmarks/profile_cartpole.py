"""cProfile of one scalerl PPO training run on CartPole-v1 (the cartpole_vs_sb3.py settings).

What it does
    Builds PPO with ``SCALERL_CARTPOLE`` from ``cartpole_vs_sb3.py`` (or a named variant),
    trains a fixed number of env steps (default 60,000, so every run profiles the same
    work whatever the seed), and prints the top functions by own time and by cumulative
    time, plus the split of the iteration time between sampling and the learner update
    (from ``result["timers"]``). The raw stats are written to ``--out`` for snakeviz or
    ``python -m pstats``.

Run
    .venv/bin/python benchmarks/profile_cartpole.py
    .venv/bin/python benchmarks/profile_cartpole.py --steps 100000 --variant n16_b1024_mb256
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cartpole_vs_sb3 import SCALERL_CARTPOLE, VARIANTS  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=60_000)
    p.add_argument("--variant", default="default", choices=list(VARIANTS))
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="/tmp/scalerl_cartpole.prof")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    from scalerl.algorithms.ppo import PPOConfig

    settings = {**SCALERL_CARTPOLE, **VARIANTS[args.variant]}
    config = PPOConfig().environment("CartPole-v1").debugging(seed=args.seed)
    config.update_from_dict(settings)
    algo = config.build_algo()

    timers: dict[str, float] = {}
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    steps = 0
    while steps < args.steps:
        result = algo.train()
        steps = result["num_env_steps_sampled_lifetime"]
        for k, v in result["timers"].items():
            timers[k] = timers.get(k, 0.0) + v
    profiler.disable()
    elapsed = time.perf_counter() - start
    algo.stop()
    profiler.dump_stats(args.out)

    print(f"settings: {settings}")
    print(
        f"{steps} env steps in {elapsed:.2f} s under cProfile, {result['training_iteration']} "
        f"iterations, final return {result['env_runners']['episode_return_mean']:.1f}"
    )
    total = timers.get("training_iteration", elapsed)
    for k, v in sorted(timers.items(), key=lambda kv: -kv[1]):
        print(f"  {k:28s} {v:7.2f} s  {100 * v / total:5.1f}%")
    stats = pstats.Stats(profiler)
    stats.strip_dirs()
    print(f"\n=== top {args.top} by own time (tottime) ===")
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"=== top {args.top} by cumulative time ===")
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"raw stats: {args.out}")


if __name__ == "__main__":
    main()
