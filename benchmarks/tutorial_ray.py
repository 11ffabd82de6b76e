"""The RLlib PPO tutorial config on scalerl: time to CartPole-v1 return 475, Ray start-up included.

What it measures
    The config from RLlib's getting-started tutorial, with ``ray.rllib`` replaced by
    ``scalerl``::

        ray.init(num_cpus=4, object_store_memory=1024**3, ignore_reinit_error=True)
        PPOConfig().environment("CartPole-v1").framework("torch")
            .env_runners(num_env_runners=2, num_envs_per_env_runner=1)
            .training(lr=0.0003, gamma=0.99, train_batch_size=4000)

    It reports the wall time from just before ``ray.init`` until the first ``algo.train()``
    whose ``episode_return_mean`` (mean of the last 100 episodes) is >= 475 -- so Ray
    start-up, actor creation and the build are included; the import time of scalerl and
    ray is reported separately. Also printed: the iterations and env steps needed, and
    the per-iteration timers of ``result["timers"]`` (EnvRunner sampling, learner update,
    weight sync, whole iteration) for every iteration and as medians.

    ``--num-env-runners 0`` runs the same config with local sampling in the driver (Ray is
    still initialised, as in the tutorial, unless ``--skip-ray-init``). Each variant runs
    in its own process, one per invocation, so start-up costs are cold in both.

Run
    .venv/bin/python benchmarks/tutorial_ray.py                      # 2 remote EnvRunners
    .venv/bin/python benchmarks/tutorial_ray.py --num-env-runners 0  # local sampling
    .venv/bin/python benchmarks/tutorial_ray.py --seed 0 --max-iterations 150

No timing assertions: the script only prints figures.
"""

import time

_T_START = time.perf_counter()

import argparse  # noqa: E402
import statistics  # noqa: E402

THRESHOLD = 475.0
TIMERS = ("env_runner_sampling_timer", "learner_update_timer", "synch_weights")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-env-runners", type=int, default=2)
    p.add_argument("--max-iterations", type=int, default=100)
    p.add_argument("--seed", type=int, default=None, help="default: unseeded, as the tutorial")
    p.add_argument("--skip-ray-init", action="store_true", help="do not call ray.init()")
    args = p.parse_args()

    t0 = time.perf_counter()
    import ray

    from scalerl.algorithms.ppo import PPOConfig

    import_s = time.perf_counter() - t0

    t_start = time.perf_counter()  # the benchmark clock: from before ray.init
    if not args.skip_ray_init:
        ray.init(num_cpus=4, object_store_memory=1024**3, ignore_reinit_error=True)
    ray_init_s = time.perf_counter() - t_start
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .framework("torch")
        .env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=1)
        .training(lr=0.0003, gamma=0.99, train_batch_size=4000)
    )
    if args.seed is not None:
        config.debugging(seed=args.seed)
    algo = config.build_algo()
    build_s = time.perf_counter() - t_start - ray_init_s

    print(
        f"RLlib tutorial PPO config, CartPole-v1, num_env_runners={args.num_env_runners}, "
        f"seed={args.seed}, threshold {THRESHOLD}"
    )
    header = (
        f"{'iter':>4s} {'return':>7s} {'env steps':>9s} {'sample s':>9s} {'learn s':>8s} "
        f"{'sync s':>7s} {'iter s':>7s} {'elapsed s':>9s}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    reached_at = None
    for _ in range(args.max_iterations):
        result = algo.train()
        elapsed = time.perf_counter() - t_start
        timers = result["timers"]
        ret = result["env_runners"]["episode_return_mean"]
        row = [timers.get(k, 0.0) for k in TIMERS] + [timers["training_iteration"]]
        rows.append(row)
        print(
            f"{result['training_iteration']:4d} {ret:7.1f} "
            f"{result['num_env_steps_sampled_lifetime']:9d} {row[0]:9.3f} {row[1]:8.3f} "
            f"{row[2]:7.4f} {row[3]:7.3f} {elapsed:9.2f}",
            flush=True,
        )
        if ret >= THRESHOLD:
            since_start = time.perf_counter() - _T_START
            reached_at = (elapsed, since_start, result["training_iteration"], result)
            break
    algo.stop()

    print()
    print(f"import scalerl + ray:            {import_s:7.2f} s (not in the time below)")
    print(f"ray.init:                        {ray_init_s:7.2f} s")
    print(f"build_algo:                      {build_s:7.2f} s")
    if reached_at is None:
        print(f"return {THRESHOLD} NOT reached in {args.max_iterations} iterations")
    else:
        elapsed, since_start, iters, result = reached_at
        print(f"time to return >= {THRESHOLD}:       {elapsed:7.2f} s (from before ray.init)")
        print(f"  + imports:                     {elapsed + import_s:7.2f} s")
        print(f"  since script start:            {since_start:7.2f} s")
        print(f"iterations:                      {iters:7d}")
        print(f"env steps:                       {result['num_env_steps_sampled_lifetime']:7d}")
    med = [statistics.median(col) for col in zip(*rows)]
    tot = [sum(col) for col in zip(*rows)]
    print(
        f"per-iteration median: sampling {med[0]:.3f} s, learner update {med[1]:.3f} s, "
        f"weight sync {med[2]:.4f} s, iteration {med[3]:.3f} s"
    )
    print(
        f"totals over {len(rows)} iterations: sampling {tot[0]:.2f} s, learner update "
        f"{tot[1]:.2f} s, weight sync {tot[2]:.3f} s, iterations {tot[3]:.2f} s"
    )
    if not args.skip_ray_init:
        ray.shutdown()


if __name__ == "__main__":
    main()
