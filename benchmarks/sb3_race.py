"""The shared driver of the `*_vs_sb3.py` races (time to a return threshold).

A race script defines one worker function per contender (seed -> None, ending with a
`report(...)` of its wall time, env steps and whether it reached the threshold) and calls
`main(...)`. The driver runs every contender for every seed in a fresh subprocess of that
script (`--worker NAME --seed S`), so imports and start-up count and no run warms up
another, contenders taking turns seed by seed; it prints one line per run, and the ratio
of the baseline's median time over each other contender's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable


def report(**fields) -> None:
    """A worker's result: one `RESULT {json}` line on stdout."""
    print("RESULT " + json.dumps(fields), flush=True)


def run_worker(script: str, name: str, seed: int, timeout: int = 1800) -> dict:
    out = subprocess.run(
        [sys.executable, script, "--worker", name, "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr or out.stdout)[-300:]}


def main(
    description: str,
    script: str,
    workers: dict[str, Callable[[int], None]],
    threshold: float,
    baseline: str = "sb3",
    default_seeds: str = "0,1,2",
) -> None:
    p = argparse.ArgumentParser(description=description.split("\n")[0])
    p.add_argument("--worker", choices=list(workers))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=default_seeds)
    p.add_argument("--only", default=",".join(workers), help="contenders to run, comma-separated")
    args = p.parse_args()
    if args.worker:
        workers[args.worker](args.seed)
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.only.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    # Contenders take turns seed by seed: on a shared machine the load drifts, and turns
    # spread the drift over all of them.
    for s in seeds:
        for name in names:
            r = run_worker(script, name, s)
            runs[name].append(r)
            if "error" in r:
                print(f"{name:14s} seed {s}: failed: {r['error']}", flush=True)
            else:
                flag = "" if r["reached"] else " (not reached)"
                print(
                    f"{name:14s} seed {s}: {r['seconds']:7.1f} s, {r['steps']:>7,} steps{flag}",
                    flush=True,
                )
    medians = {}
    for name in names:
        ok = [r["seconds"] for r in runs[name] if r.get("reached")]
        medians[name] = statistics.median(ok) if ok else None
    base = medians.get(baseline)
    for name, median in medians.items():
        if name != baseline and median and base:
            print(
                f"median time to {threshold:g}: {name} {median:.1f} s, {baseline} {base:.1f} s "
                f"-> {name} is {base / median:.2f}x {baseline}'s speed"
            )
