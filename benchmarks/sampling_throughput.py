"""EnvRunner sampling throughput on CartPole-v1, against the raw Gymnasium step rate.

What it measures
    * raw      -- ``gym.make("CartPole-v1")`` stepped in a plain Python loop with
                  ``env.action_space.sample()`` actions, reset when an episode ends: the
                  ceiling for any single-process sampler that steps envs from Python.
    * scalerl  -- ``SingleAgentEnvRunner.sample()`` of a default PPO module (the local
                  runner of ``PPOConfig().environment("CartPole-v1")...build_algo()``,
                  explore=True) with 1 and with 16 envs per runner. Each ``sample()`` call
                  returns one rollout fragment (``config.get_rollout_fragment_length()``
                  steps per env: the default train_batch_size of 4000 / num_envs), with
                  stochastic actions, log-probs and action-dist inputs recorded.

    Every contender is warmed up first, then timed over at least ``--steps`` (default
    20,000) env steps; the best of ``--trials`` (default 3) rounds is reported, as
    env steps per second and as a ratio to the raw rate measured in the same run. The
    process keeps torch at 1 thread (as scalerl's Learner sets it when the algo is built).

    ``--compare-checks`` instead times the same runner settings with the per-step env data
    checks on (the default) and off (``config.environment(check_env_steps=False)``): the
    two runners alternate, round by round, so machine-load drift hits both alike, and
    each round is timed in process CPU time (a busy shared machine barely moves it);
    printed are the best and the median rate of each and their ratio (on / off).

Run
    .venv/bin/python benchmarks/sampling_throughput.py
    .venv/bin/python benchmarks/sampling_throughput.py --compare-checks --trials 15
    .venv/bin/python benchmarks/sampling_throughput.py --steps 50000 --trials 5 --envs 1,8,16,64

No timing assertions: the script only prints a table.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch


def raw_gym_rate(num_steps: int) -> float:
    """Env steps/s of one gym.make env with random actions in a Python loop."""
    from sampling_modules import raw_rate

    return raw_rate(lambda: gym.make("CartPole-v1"), num_steps)


def make_runner(num_envs: int, check_env_steps: bool = True):
    from scalerl.algorithms.ppo import PPOConfig

    algo = (
        PPOConfig()
        .environment("CartPole-v1", check_env_steps=check_env_steps)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs, explore=True)
        .debugging(seed=0)
        .build_algo()
    )
    return algo, algo.env_runner_group.local_runner


def runner_rate(runner, num_steps: int, clock=time.perf_counter) -> tuple[float, int]:
    """Env steps/s of repeated `runner.sample()` calls totalling >= num_steps steps."""
    done = 0
    start = clock()
    while done < num_steps:
        _, metrics = runner.sample()
        done += metrics["num_env_steps"]
    return done / (clock() - start), done


def compare_checks(env_counts: list[int], num_steps: int, trials: int) -> None:
    """Checks on vs off, same run, rounds interleaved (on, off, off, on, ...)."""
    import statistics

    runners = {
        (n, on): make_runner(n, check_env_steps=on) for n in env_counts for on in (True, False)
    }
    for _, runner in runners.values():
        runner_rate(runner, 5_000)  # warm-up
    rates: dict[tuple, list[float]] = {key: [] for key in runners}
    for trial in range(trials):
        for n in env_counts:
            # Alternate which goes first, so neither always follows the other.
            for on in (True, False) if trial % 2 == 0 else (False, True):
                runner = runners[(n, on)][1]
                rates[(n, on)].append(runner_rate(runner, num_steps, time.process_time)[0])
    print(
        f"CartPole-v1 sampling, per-step env checks on vs off: {trials} interleaved rounds "
        f"of >= {num_steps} env steps each; env steps per second of this process's CPU "
        "time (other processes on the machine barely move it)\n"
    )
    header = (
        f"{'envs':>4s} {'on best':>9s} {'off best':>9s} {'ratio':>6s}   "
        f"{'on median':>9s} {'off median':>10s} {'ratio':>6s}   {'paired ratio [q1, q3]':>22s}"
    )
    print(header)
    print("-" * len(header))
    for n in env_counts:
        on, off = rates[(n, True)], rates[(n, False)]
        # Each round's on/off ratio (the two ran back to back): drift cancels in pairs.
        q1, med, q3 = statistics.quantiles([a / b for a, b in zip(on, off)], n=4)
        print(
            f"{n:4d} {max(on):9.0f} {max(off):9.0f} {max(on) / max(off):6.3f}   "
            f"{statistics.median(on):9.0f} {statistics.median(off):10.0f} "
            f"{statistics.median(on) / statistics.median(off):6.3f}   "
            f"{med:6.3f} [{q1:.3f}, {q3:.3f}]"
        )
    for algo, _ in runners.values():
        algo.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20_000, help="env steps per timed round")
    p.add_argument("--trials", type=int, default=3, help="timed rounds; the best is kept")
    p.add_argument("--envs", default="1,16", help="comma-separated envs per runner")
    p.add_argument("--compare-checks", action="store_true", help="per-step env checks on vs off")
    args = p.parse_args()
    torch.set_num_threads(1)

    env_counts = [int(n) for n in args.envs.split(",")]
    if args.compare_checks:
        compare_checks(env_counts, args.steps, args.trials)
        return
    runners = {n: make_runner(n) for n in env_counts}

    # Warm-up: a few thousand steps of each, so lazy init and caches are out of the way.
    raw_gym_rate(5_000)
    for _, runner in runners.values():
        runner_rate(runner, 5_000)

    # Rounds interleave the contenders, so drift in machine load hits them alike.
    best: dict[str, float] = {}
    steps: dict[str, int] = {}
    for _ in range(args.trials):
        rate = raw_gym_rate(args.steps)
        best["raw"] = max(best.get("raw", 0.0), rate)
        steps["raw"] = args.steps
        for n, (_, runner) in runners.items():
            rate, done = runner_rate(runner, args.steps)
            best[f"runner{n}"] = max(best.get(f"runner{n}", 0.0), rate)
            steps[f"runner{n}"] = done

    raw = best["raw"]
    print(f"CartPole-v1 sampling, best of {args.trials} rounds of >= {args.steps} env steps")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)\n")
    header = f"{'sampler':44s} {'steps/round':>11s} {'steps/s':>10s} {'us/step':>8s} {'vs raw':>7s}"
    print(header)
    print("-" * len(header))
    print(
        f"{'raw gym.make, random actions, 1 env':44s} {steps['raw']:11d} {raw:10.0f} "
        f"{1e6 / raw:8.1f} {1.0:6.2f}x"
    )
    for n, (_, runner) in runners.items():
        rate = best[f"runner{n}"]
        frag = runner.config.get_rollout_fragment_length()
        label = f"scalerl EnvRunner, {n} env(s), fragment {frag}"
        print(
            f"{label:44s} {steps[f'runner{n}']:11d} {rate:10.0f} {1e6 / rate:8.1f} "
            f"{rate / raw:6.2f}x"
        )
    for algo, _ in runners.values():
        algo.stop()


if __name__ == "__main__":
    main()
