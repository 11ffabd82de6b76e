"""Replay throughput: transitions/s added and sampled, uniform vs prioritized buffers.

CartPole-sized transitions (obs/next_obs float32[4], int64 action, float32 reward,
terminated, discount). Adds come in batches of 16 env steps (one vector step of 16
envs); samples in batches of 256, the prioritized buffer also updating the 256
priorities after each sample (what a DQN learner step does). Buffers are pre-filled to
capacity before sampling is timed, so sampling walks full-depth trees.

    python benchmarks/replay_throughput.py [--capacities 100000 1000000] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer


def make_batch(rng: np.random.Generator, B: int) -> dict[str, np.ndarray]:
    return {
        Columns.OBS: rng.standard_normal((B, 4)).astype(np.float32),
        Columns.ACTIONS: rng.integers(0, 2, B),
        Columns.REWARDS: np.ones(B, dtype=np.float32),
        Columns.NEXT_OBS: rng.standard_normal((B, 4)).astype(np.float32),
        Columns.TERMINATEDS: np.zeros(B, dtype=np.float32),
        Columns.DISCOUNTS: np.full(B, 0.99, dtype=np.float32),
    }


def timed(fn, seconds: float) -> float:
    """Calls of `fn` per second, over at least `seconds` (after one warm-up call)."""
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / elapsed


def bench(kind: str, capacity: int, seconds: float, add_batch: int, sample_batch: int) -> dict:
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity) if kind == "uniform" else PrioritizedReplayBuffer(capacity)
    batches = [make_batch(rng, add_batch) for _ in range(64)]
    i = iter(range(1 << 62))

    def add() -> None:
        buf.add(batches[next(i) % 64])

    add_rate = timed(add, seconds) * add_batch
    big = make_batch(rng, 65_536)
    while len(buf) < capacity:  # fill in large batches, then time sampling
        buf.add(big)

    def sample() -> None:
        s = buf.sample(sample_batch, rng)
        if kind == "prioritized":
            buf.update_priorities(s[Columns.INDICES], rng.standard_normal(sample_batch))

    sample_rate = timed(sample, seconds) * sample_batch
    return {
        "kind": kind,
        "capacity": capacity,
        "add": add_rate,
        "sample": sample_rate,
        "bytes_per_transition": buf.nbytes / capacity,
        "mib": buf.nbytes / 2**20,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capacities", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--add-batch", type=int, default=16)
    p.add_argument("--sample-batch", type=int, default=256)
    args = p.parse_args()
    print(
        f"add: batches of {args.add_batch}; sample: batches of {args.sample_batch} "
        "(prioritized: + update_priorities)"
    )
    print(
        f"{'buffer':<12} {'capacity':>9} {'add/s':>12} {'sample/s':>12} {'B/trans':>8} {'MiB':>7}"
    )
    for capacity in args.capacities:
        for kind in ("uniform", "prioritized"):
            r = bench(kind, capacity, args.seconds, args.add_batch, args.sample_batch)
            print(
                f"{r['kind']:<12} {r['capacity']:>9,} {r['add']:>12,.0f} {r['sample']:>12,.0f} "
                f"{r['bytes_per_transition']:>8.0f} {r['mib']:>7.1f}"
            )


if __name__ == "__main__":
    main()
