"""EnvRunner sampling throughput per module kind (MLP, CNN, LSTM), each against the raw step
rate of its own env, so that a slowdown in one encoder's sampling path shows.

What it measures
    For each case: ``raw`` -- the env stepped in a plain Python loop with random actions
    (reset at episode ends), the ceiling for a sampler that steps envs from Python; and
    ``runner`` -- ``SingleAgentEnvRunner.sample()`` (explore=True) of the default PPO
    module built for that env and model config, with ``--envs`` envs (default 16).

    * MLP  -- CartPole-v1, default [64, 64] tanh MLP (numpy fast path).
    * CNN  -- ``ImageTargetEnv`` (16x16x3 uint8), the default CNN (torch forward per step).
    * LSTM -- ``StatelessCartPole`` with ``use_lstm=True``: see ``lstm_case`` (skipped
      until the default module supports ``use_lstm``).

    Warm-up first; each round times >= ``--steps`` env steps (default 10,000); the best of
    ``--trials`` (default 3) rounds is kept; rounds interleave cases. torch at 1 thread.

Run
    .venv/bin/python benchmarks/sampling_modules.py [--steps 10000 --trials 3 --envs 16]

No timing assertions: the script only prints a table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

from scalerl.examples.envs import ImageTargetEnv, StatelessCartPole


@dataclass
class Case:
    name: str
    make_env: Callable[[], gym.Env]
    env: Any  # what PPOConfig.environment() takes
    model_config: dict[str, Any] = field(default_factory=dict)


def mlp_case() -> Case:
    return Case("MLP, CartPole-v1", lambda: gym.make("CartPole-v1"), "CartPole-v1")


def cnn_case() -> Case:
    return Case("CNN, ImageTargetEnv 16x16x3", ImageTargetEnv, ImageTargetEnv)


# LSTM row: once the default module supports `use_lstm`, this case runs as it is (adjust
# the model config here if the settings' names differ); until then it is reported skipped.
def lstm_case() -> Case:
    return Case(
        "LSTM, StatelessCartPole",
        StatelessCartPole,
        StatelessCartPole,
        {"use_lstm": True, "lstm_cell_size": 64, "max_seq_len": 20},
    )


def attention_case() -> Case:
    return Case(
        "GTrXL, StatelessCartPole",
        StatelessCartPole,
        StatelessCartPole,
        {"use_attention": True, "max_seq_len": 20},
    )


CASES = [mlp_case, cnn_case, lstm_case, attention_case]


def raw_rate(make_env: Callable[[], gym.Env], num_steps: int) -> float:
    """Env steps/s of one env with random actions in a Python loop."""
    env = make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    sample, step, reset = env.action_space.sample, env.step, env.reset
    start = time.perf_counter()
    for _ in range(num_steps):
        _, _, term, trunc, _ = step(sample())
        if term or trunc:
            reset()
    elapsed = time.perf_counter() - start
    env.close()
    return num_steps / elapsed


def make_runner(case: Case, num_envs: int):
    from scalerl.algorithms.ppo import PPOConfig

    algo = (
        PPOConfig()
        .environment(case.env)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs, explore=True)
        .rl_module(model_config=case.model_config)
        .debugging(seed=0)
        .build_algo()
    )
    return algo, algo.env_runner_group.local_runner


def runner_rate(runner, num_steps: int) -> float:
    """Env steps/s of repeated `runner.sample()` calls totalling >= num_steps steps."""
    done = 0
    start = time.perf_counter()
    while done < num_steps:
        _, metrics = runner.sample()
        done += metrics["num_env_steps"]
    return done / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=10_000, help="env steps per timed round")
    p.add_argument("--trials", type=int, default=3, help="timed rounds; the best is kept")
    p.add_argument("--envs", type=int, default=16, help="envs per runner")
    args = p.parse_args()
    torch.set_num_threads(1)

    built, skipped = {}, {}
    for make_case in CASES:
        case = make_case()
        try:
            built[case.name] = (case, *make_runner(case, args.envs))
        except Exception as e:  # a module kind not supported yet: report, do not stop
            skipped[case.name] = f"{type(e).__name__}: {str(e)[:90]}"
    torch.set_num_threads(1)  # building a Learner may have changed it

    for case, _, runner in built.values():  # warm-up
        raw_rate(case.make_env, 2_000)
        runner_rate(runner, 2_000)
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.trials):
        for name, (case, _, runner) in built.items():
            for kind, rate in (
                ("raw", raw_rate(case.make_env, args.steps)),
                ("runner", runner_rate(runner, args.steps)),
            ):
                best[name, kind] = max(best.get((name, kind), 0.0), rate)

    print(
        f"EnvRunner sampling per module, {args.envs} envs, explore=True; best of "
        f"{args.trials} rounds of >= {args.steps} env steps"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)\n")
    header = (
        f"{'module, env':30s} {'raw env steps/s':>15s} {'runner steps/s':>14s} "
        f"{'us/step':>8s} {'vs raw':>7s}"
    )
    print(header)
    print("-" * len(header))
    for name in built:
        raw, rate = best[name, "raw"], best[name, "runner"]
        print(f"{name:30s} {raw:15.0f} {rate:14.0f} {1e6 / rate:8.1f} {rate / raw:6.2f}x")
    for name, why in skipped.items():
        print(f"{name:30s} skipped ({why})")
    for _, algo, _ in built.values():
        algo.stop()


if __name__ == "__main__":
    main()
