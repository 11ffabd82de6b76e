"""Do the hand-written gradients pay? Autograd vs the registered fast path, end to end.

What it measures
    The wall time of a whole training run (build, sampling, updates, weight syncs) with the
    fast gradient path and with autograd on the same loss, in the same process, alternating
    (autograd, fast, autograd, fast, ...) `--repeats` times, with one torch thread; also
    the time spent in the learner updates alone (`learner_update_timer`).

    ppo -- PPO, CartPole-v1, 40k env steps (10 iterations of the default 4000-step batch,
           minibatch 128, 10 epochs).
    sac -- SAC, Pendulum-v1, 6k env steps: 5k updates after the default 1000 steps of
           learning start (one update per env step).

    The printed ratio is autograd's median time over the fast path's. The project keeps a
    fast path only where the end-to-end ratio is at least 1.3 (docs/design.md, "Learning").
    No timing assertions: the script prints a table.

Run
    .venv/bin/python benchmarks/fast_gradients.py [--only ppo,sac] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def run_ppo(seed: int) -> tuple[float, float]:
    """(wall seconds, seconds in learner updates) of PPO CartPole-v1 for 40k env steps."""
    from scalerl.algorithms.ppo import PPOConfig

    start = time.perf_counter()
    algo = PPOConfig().environment("CartPole-v1").debugging(seed=seed).build_algo()
    update = 0.0
    for _ in range(10):
        update += algo.train()["timers"]["learner_update_timer"]
    algo.stop()
    return time.perf_counter() - start, update


def run_sac(seed: int) -> tuple[float, float]:
    """(wall seconds, seconds in learner updates) of SAC Pendulum-v1 for 6k env steps."""
    from scalerl.algorithms.sac import SACConfig

    start = time.perf_counter()
    config = SACConfig().environment("Pendulum-v1").debugging(seed=seed)
    algo = config.training(min_sample_timesteps_per_iteration=1000).build_algo()
    update = 0.0
    for _ in range(6):
        update += algo.train()["timers"].get("learner_update_timer", 0.0)
    algo.stop()
    return time.perf_counter() - start, update


def fast_path_switch(name: str) -> Callable[[bool], None]:
    """A function that turns the algorithm's registered fast gradient path on or off."""
    from scalerl.core.fast_gradients import register_fast_gradient, registered_fast_gradient

    if name == "ppo":
        from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
        from scalerl.algorithms.ppo.ppo_learner import PPOLearner

        key = (PPOLearner, DefaultPPOTorchRLModule)
    else:
        from scalerl.algorithms.sac.default_sac_rl_module import DefaultSACTorchRLModule
        from scalerl.algorithms.sac.sac_learner import SACLearner

        key = (SACLearner, DefaultSACTorchRLModule)
    fn = registered_fast_gradient(*key)
    if fn is None:
        raise SystemExit(f"{name}: no fast gradient path is registered.")

    def switch(on: bool) -> None:
        register_fast_gradient(*key, fn if on else None)

    return switch


def main() -> None:
    """Alternate autograd and fast-path runs per algorithm; print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="ppo,sac")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {"ppo": run_ppo, "sac": run_sac}
    print(f"{'algo':5} {'path':9} {'wall s (each)':>28} {'update s (each)':>28}")
    for name in args.only.split(","):
        switch = fast_path_switch(name)
        times: dict[str, list[tuple[float, float]]] = {"autograd": [], "fast": []}
        for repeat in range(args.repeats):
            for path in ("autograd", "fast"):
                switch(path == "fast")
                times[path].append(runs[name](seed=repeat))
        switch(True)
        for path, rows in times.items():
            wall = " ".join(f"{w:6.1f}" for w, _ in rows)
            upd = " ".join(f"{u:6.1f}" for _, u in rows)
            print(f"{name:5} {path:9} {wall:>28} {upd:>28}")
        med = {p: [statistics.median(x[i] for x in r) for i in (0, 1)] for p, r in times.items()}
        print(
            f"{name:5} autograd/fast: end to end {med['autograd'][0] / med['fast'][0]:.2f}x, "
            f"updates only {med['autograd'][1] / med['fast'][1]:.2f}x"
        )


if __name__ == "__main__":
    main()
