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

    `--compare-checks` instead times each multi-agent contender with the per-step env data
    checks on (the default) and off (`config.environment(check_env_steps=False)`), the two
    runners alternating round by round, in process CPU time; printed: best and median agent
    steps/s of each and their ratio (on / off).

Run
    .venv/bin/python benchmarks/multi_agent_sampling.py [--steps 20000] [--trials 3] [--envs 1,16]
    .venv/bin/python benchmarks/multi_agent_sampling.py --compare-checks --trials 15

No timing assertions: the script only prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch


def make_runner(num_envs: int, num_policies: int, check_env_steps: bool = True):
    from scalerl.algorithms.ppo import PPOConfig
    from scalerl.examples.envs import MultiAgentCartPole

    config = PPOConfig().env_runners(num_envs_per_env_runner=num_envs).debugging(seed=0)
    config.environment(check_env_steps=check_env_steps)
    if num_policies == 0:
        config.environment("CartPole-v1")
    else:
        config.environment(MultiAgentCartPole, env_config={"num_agents": 4}).multi_agent(
            policies={f"p{i}" for i in range(num_policies)},
            policy_mapping_fn=lambda aid, ep, **kw: f"p{aid % num_policies}",
        )
    algo = config.build_algo()
    return algo, algo.env_runner_group.local_runner


def rates(runner, num_steps: int, clock=time.perf_counter) -> tuple[float, float]:
    """(env steps/s, agent steps/s) of `runner.sample()` calls totalling >= num_steps
    agent steps."""
    env_steps = agent_steps = 0
    start = clock()
    while agent_steps < num_steps:
        _, metrics = runner.sample()
        env_steps += metrics["num_env_steps"]
        agent_steps += sum(metrics.get("num_agent_steps", {"": metrics["num_env_steps"]}).values())
    elapsed = clock() - start
    return env_steps / elapsed, agent_steps / elapsed


def compare_checks(env_counts: list[int], num_steps: int, trials: int) -> None:
    """Per-step env checks on vs off, same run, rounds interleaved, process CPU time."""
    import statistics

    print(f"MultiAgentCartPole (4 agents), checks on vs off: {trials} interleaved rounds")
    header = ("envs", "contender", "on best", "off best", "ratio", "on med", "off med", "ratio")
    print("{:>4}  {:<26} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6}".format(*header), end="")
    print("   paired ratio [q1, q3]")
    for n in env_counts:
        for name, policies in (("1 shared policy", 1), ("4 policies", 4)):
            runners = {on: make_runner(n, policies, on) for on in (True, False)}
            for _, runner in runners.values():
                rates(runner, 5_000)  # warm-up
            agent_rates: dict[bool, list[float]] = {True: [], False: []}
            for trial in range(trials):
                for on in (True, False) if trial % 2 == 0 else (False, True):
                    runner = runners[on][1]
                    agent_rates[on].append(rates(runner, num_steps, time.process_time)[1])
            on, off = agent_rates[True], agent_rates[False]
            med_on, med_off = statistics.median(on), statistics.median(off)
            # Each round's on/off ratio (the two ran back to back): drift cancels in pairs.
            q1, med, q3 = statistics.quantiles([a / b for a, b in zip(on, off)], n=4)
            print(
                f"{n:>4}  {name:<26} {max(on):>9,.0f} {max(off):>9,.0f} "
                f"{max(on) / max(off):>6.3f} {med_on:>9,.0f} {med_off:>9,.0f} "
                f"{med_on / med_off:>6.3f}   {med:.3f} [{q1:.3f}, {q3:.3f}]"
            )
            for algo, _ in runners.values():
                algo.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20_000, help="agent steps per timed round")
    p.add_argument("--trials", type=int, default=3, help="timed rounds; the best is kept")
    p.add_argument("--envs", default="1,16", help="comma-separated envs per runner")
    p.add_argument("--compare-checks", action="store_true", help="per-step env checks on vs off")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.compare_checks:
        compare_checks([int(x) for x in args.envs.split(",")], args.steps, args.trials)
        return
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
