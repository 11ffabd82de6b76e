"""Start-up cost of scalerl: the import, and building a CartPole PPO algorithm locally.

What it measures
    1. ``import scalerl.algorithms.ppo`` -- timed in fresh interpreters (one per trial,
       ``--import-trials``, default 5; the median and the first are printed), since a
       second import in the same process is free. Also given for reference: ``import
       torch`` and ``import gymnasium`` alone in a fresh interpreter, and the interpreter
       start-up itself (``python -c pass``), all timed from outside the child process.
    2. ``PPOConfig().environment("CartPole-v1").build_algo()`` with local sampling
       (num_env_runners=0, the default), in this process after the import: the first call
       (which pays lazy initialisation) and the median of the next ``--builds`` (default 5).

Run
    .venv/bin/python benchmarks/build_time.py
    .venv/bin/python benchmarks/build_time.py --import-trials 10 --builds 10

No timing assertions: the script only prints a table.
"""

import time

_T_START = time.perf_counter()

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

CHILD = (
    "import time; t = time.perf_counter(); import {module}; print(repr(time.perf_counter() - t))"
)


def time_fresh_import(module: str) -> tuple[float, float]:
    """(import time measured inside, process wall time measured outside) in a new interpreter."""
    code = CHILD.format(module=module) if module else "print(0.0)"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return float(out.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--import-trials", type=int, default=5)
    p.add_argument("--builds", type=int, default=5)
    args = p.parse_args()

    # 1. Imports, each in a fresh interpreter.
    rows = []
    for label, module in (
        ("python -c pass (interpreter only)", ""),
        ("import torch", "torch"),
        ("import gymnasium", "gymnasium"),
        ("import scalerl.algorithms.ppo", "scalerl.algorithms.ppo"),
    ):
        trials = [time_fresh_import(module) for _ in range(args.import_trials)]
        inside = [t[0] for t in trials]
        wall = [t[1] for t in trials]
        rows.append((label, inside[0], statistics.median(inside), statistics.median(wall)))

    # 2. build_algo in this process, after the import.
    t0 = time.perf_counter()
    from scalerl.algorithms.ppo import PPOConfig

    import_here = time.perf_counter() - t0

    def build() -> float:
        t = time.perf_counter()
        algo = PPOConfig().environment("CartPole-v1").build_algo()
        elapsed = time.perf_counter() - t
        algo.stop()
        return elapsed

    first_build = build()
    builds = [build() for _ in range(args.builds)]

    print(f"python {sys.version.split()[0]}; fresh interpreters x{args.import_trials}\n")
    header = f"{'what':42s} {'first s':>8s} {'median s':>9s} {'process wall s':>15s}"
    print(header)
    print("-" * len(header))
    for label, first, med, wall in rows:
        if label.startswith("python -c pass"):  # nothing imported: only the process wall
            print(f"{label:42s} {'-':>8s} {'-':>9s} {wall:15.3f}")
        else:
            print(f"{label:42s} {first:8.3f} {med:9.3f} {wall:15.3f}")
    print()
    print(f"import scalerl.algorithms.ppo in this process: {import_here:.3f} s")
    print("PPOConfig().environment('CartPole-v1').build_algo(), local (num_env_runners=0):")
    print(f"  first call:             {first_build:.4f} s")
    print(
        f"  median of next {args.builds}:      {statistics.median(builds):.4f} s "
        f"(min {min(builds):.4f}, max {max(builds):.4f})"
    )
    print(f"script start to here: {time.perf_counter() - _T_START:.2f} s")


if __name__ == "__main__":
    main()
