"""Multi-agent sampling throughput: MultiAgentCartPole with 4 agents vs CartPole-v1.

What it measures
    * single  -- `SingleAgentEnvRunner.sample()` on CartPole-v1 (default PPO module).
    * multi   -- `MultiAgentEnvRunner.sample()` on `MultiAgentCartPole` with 4 agents, all
                 mapped to one shared policy (one batched forward pass per step for all
                 agents of all envs), and with 4 policies (one forward pass per policy).

    Both with N envs per runner (default 1 and 16), warmed up, then timed over at least
    `--steps` agent steps; the best of `--trials` rounds. Printed: env steps/s, agent
    steps/s, and agent steps/s as a ratio of the single-agent steps/s measured in the same
    run: the cost of the multi-agent bookkeeping per agent step (an agent whose pole fell
    waits for the others, so an env step holds 1-4 agent steps).

Run
    .venv/bin/python benchmarks/multi_agent_sampling.py [--steps 20000] [--trials 3] [--envs 1,16]

No timing assertions: the script only prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch


def make_runner(num_envs: int, num_policies: int):
    from scalerl.algorithms.ppo import PPOConfig
    from scalerl.examples.envs import MultiAgentCartPole

    config = PPOConfig().env_runners(num_envs_per_env_runner=num_envs).debugging(seed=0)
    if num_policies == 0:
        config.environment("CartPole-v1")
    else:
        config.environment(MultiAgentCartPole, env_config={"num_agents": 4}).multi_agent(
            policies={f"p{i}" for i in range(num_policies)},
            policy_mapping_fn=lambda aid, ep, **kw: f"p{aid % num_policies}",
        )
    algo = config.build_algo()
    return algo, algo.env_runner_group.local_runner


def rates(runner, num_steps: int) -> tuple[float, float]:
    """(env steps/s, agent steps/s) of `runner.sample()` calls totalling >= num_steps
    agent steps."""
    env_steps = agent_steps = 0
    start = time.perf_counter()
    while agent_steps < num_steps:
        _, metrics = runner.sample()
        env_steps += metrics["num_env_steps"]
        agent_steps += sum(metrics.get("num_agent_steps", {"": metrics["num_env_steps"]}).values())
    elapsed = time.perf_counter() - start
    return env_steps / elapsed, agent_steps / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20_000, help="agent steps per timed round")
    p.add_argument("--trials", type=int, default=3, help="timed rounds; the best is kept")
    p.add_argument("--envs", default="1,16", help="comma-separated envs per runner")
    args = p.parse_args()
    torch.set_num_threads(1)
    kinds = {
        "CartPole-v1 (single agent)": 0,
        "4 agents, 1 shared policy": 1,
        "4 agents, 4 policies": 4,
    }
    header = ("envs", "contender", "env steps/s", "agent steps/s", "vs single")
    print("{:>4}  {:<28} {:>12} {:>14} {:>10}".format(*header))
    for n in (int(x) for x in args.envs.split(",")):
        single = None
        for name, policies in kinds.items():
            algo, runner = make_runner(n, policies)
            rates(runner, 5_000)  # warm-up
            best = max((rates(runner, args.steps) for _ in range(args.trials)), key=lambda r: r[1])
            algo.stop()
            single = best[1] if single is None else single
            print(
                f"{n:>4}  {name:<28} {best[0]:>12,.0f} {best[1]:>14,.0f} {best[1] / single:>9.2f}x"
            )


if __name__ == "__main__":
    main()
