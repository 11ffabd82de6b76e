"""RLlib's example-script helpers (`ray.rllib.examples.utils`, formerly
`ray.rllib.utils.test_utils`): the common command line and the training loop.

`add_rllib_example_script_args()` adds RLlib's flags (`--num-env-runners`,
`--stop-reward`, `--stop-iters`, `--stop-timesteps`, `--as-test`, `--num-agents`, ...);
`run_rllib_example_script_experiment(config, args)` applies them to the config and trains
in this process until a stop criterion is met (scalerl runs example scripts without Ray
Tune; the Tune-only options raise a ConfigError naming them).
"""

from __future__ import annotations

import argparse
from typing import Any

from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    TRAINING_ITERATION,
)


def add_rllib_example_script_args(
    parser: argparse.ArgumentParser | None = None,
    default_reward: float = 100.0,
    default_iters: int = 200,
    default_timesteps: int = 100000,
) -> argparse.ArgumentParser:
    """Add RLlib's example-script flags to `parser` (a new one if None) and return it.

    Args:
        parser: The parser to add the flags to; None: a new `ArgumentParser`.
        default_reward: The default of `--stop-reward`.
        default_iters: The default of `--stop-iters`.
        default_timesteps: The default of `--stop-timesteps`.
    """
    p = parser if parser is not None else argparse.ArgumentParser()
    p.add_argument("--algo", type=str, default="PPO", help="The algorithm's name.")
    p.add_argument("--framework", choices=["torch"], default="torch", help="torch only.")
    p.add_argument("--env", type=str, default=None, help="The env (if the script sets none).")
    p.add_argument("--num-env-runners", type=int, default=None, help="Ray EnvRunners.")
    p.add_argument("--num-envs-per-env-runner", type=int, default=None, help="Envs per runner.")
    p.add_argument("--num-agents", type=int, default=0, help="Agents of a multi-agent env.")
    p.add_argument("--evaluation-num-env-runners", type=int, default=0)
    p.add_argument("--evaluation-interval", type=int, default=0, help="0: no evaluation.")
    p.add_argument("--evaluation-duration", type=_duration, default=10, help="int or 'auto'.")
    p.add_argument(
        "--evaluation-duration-unit", choices=["episodes", "timesteps"], default="episodes"
    )
    p.add_argument("--evaluation-parallel-to-training", action="store_true")
    p.add_argument("--output", type=str, default=None, help="Offline output (not supported).")
    p.add_argument("--log-level", type=str, default=None, help="Accepted, ignored.")
    p.add_argument("--no-tune", action="store_true", help="Accepted: scalerl trains without Tune.")
    p.add_argument("--num-samples", type=int, default=1, help="Tune trials: 1 only here.")
    p.add_argument("--max-concurrent-trials", type=int, default=None, help="Tune only.")
    p.add_argument("--verbose", type=int, default=2, help="0: silent; >= 1: a line per iteration.")
    p.add_argument("--checkpoint-freq", type=int, default=0, help="Save every N iterations.")
    p.add_argument("--checkpoint-at-end", action="store_true", help="Save after training.")
    p.add_argument("--tune-max-report-freq", type=int, default=5, help="Tune only.")
    p.add_argument("--wandb-key", type=str, default=None, help="WandB (not supported).")
    p.add_argument("--wandb-project", type=str, default=None)
    p.add_argument("--wandb-run-name", type=str, default=None)
    p.add_argument("--stop-reward", type=float, default=default_reward)
    p.add_argument("--stop-iters", type=int, default=default_iters)
    p.add_argument("--stop-timesteps", type=int, default=default_timesteps)
    p.add_argument("--as-test", action="store_true", help="Fail unless --stop-reward is reached.")
    p.add_argument("--as-release-test", action="store_true", help="Same as --as-test here.")
    p.add_argument("--num-learners", type=int, default=None)
    p.add_argument("--num-cpus-per-learner", type=float, default=None)
    p.add_argument("--num-gpus-per-learner", type=float, default=None)
    p.add_argument("--num-aggregator-actors-per-learner", type=int, default=None)
    p.add_argument("--num-cpus", type=int, default=0, help="CPUs for ray.init (0: all).")
    p.add_argument("--num-gpus", type=int, default=None, help="Old GPU setting: 0 only.")
    p.add_argument("--old-api-stack", action="store_true", help="Not supported.")
    p.add_argument("--enable-new-api-stack", action="store_true", help="Accepted (always on).")
    p.add_argument("--local-mode", action="store_true", help="Accepted, ignored.")
    return p


def _duration(text: str) -> int | str:
    return text if text == "auto" else int(text)


def _refuse(args: argparse.Namespace, tune_options: dict[str, Any]) -> None:
    """ConfigError for a flag or option that needs what scalerl's local loop lacks."""
    needs = {
        "--old-api-stack": args.old_api_stack,
        "--num-samples > 1 (Ray Tune trials)": args.num_samples > 1,
        "--wandb-key (WandB logging)": args.wandb_key is not None,
        "--num-aggregator-actors-per-learner": args.num_aggregator_actors_per_learner,
        **{f"`{k}` (Ray Tune)": v is not None for k, v in tune_options.items()},
    }
    for what, asked in needs.items():
        if asked:
            raise ConfigError(
                f"scalerl does not support {what} in example scripts yet: they run in this "
                "process without Ray Tune."
            )


def apply_example_script_args(config: Any, args: argparse.Namespace) -> Any:
    """Set what `args` asks for on `config` (as RLlib's runner does) and return it."""
    if args.env is not None and config.env is None:
        config.environment(args.env)
    if args.num_env_runners is not None:
        config.env_runners(num_env_runners=args.num_env_runners)
    if args.num_envs_per_env_runner is not None:
        config.env_runners(num_envs_per_env_runner=args.num_envs_per_env_runner)
    learners = {
        "num_learners": args.num_learners,
        "num_cpus_per_learner": args.num_cpus_per_learner,
        "num_gpus_per_learner": args.num_gpus_per_learner,
    }
    config.learners(**{k: v for k, v in learners.items() if v is not None})
    if args.num_gpus is not None:
        config.resources(num_gpus=args.num_gpus)
    if args.evaluation_interval > 0:
        config.evaluation(
            evaluation_num_env_runners=args.evaluation_num_env_runners,
            evaluation_interval=args.evaluation_interval,
            evaluation_duration=args.evaluation_duration,
            evaluation_duration_unit=args.evaluation_duration_unit,
            evaluation_parallel_to_training=args.evaluation_parallel_to_training,
        )
    if args.output is not None:
        config.offline_data(output=args.output)
    return config


def lookup(results: dict[str, Any], path: str) -> Any:
    """`results["a"]["b"]` for the path "a/b" (None if a key is missing)."""
    value: Any = results
    for key in path.split("/"):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def run_rllib_example_script_experiment(
    base_config: Any,
    args: argparse.Namespace | None = None,
    *,
    stop: dict[str, Any] | None = None,
    success_metric: dict[str, float] | None = None,
    trainable: Any = None,
    tune_callbacks: list | None = None,
    keep_config: bool = False,
    keep_ray_up: bool = False,
    scheduler: Any = None,
    progress_reporter: Any = None,
) -> dict[str, Any]:
    """Train `base_config` (with `args` applied unless `keep_config`) in this process until
    a `stop` criterion is met, and return the last result dict.

    Args:
        base_config: The algorithm's config.
        args: `add_rllib_example_script_args().parse_args()`; None parses `sys.argv`.
        stop: {result path: value}: stop when a result reaches a value (default: the
            `--stop-reward`, `--stop-iters` and `--stop-timesteps` criteria).
        success_metric: With `--as-test`, {result path: minimum} that the last result must
            reach (default: `env_runners/episode_return_mean` >= `--stop-reward`).
        trainable: An algorithm class to build instead of `base_config.algo_class`.
        tune_callbacks: Ray Tune callbacks (not supported: a ConfigError).
        keep_config: Use `base_config` as it is, ignoring the config flags in `args`.
        keep_ray_up: Accepted (scalerl starts Ray only for Ray runners and leaves it up).
        scheduler: A Ray Tune scheduler (not supported: a ConfigError).
        progress_reporter: A Ray Tune progress reporter (not supported: a ConfigError).

    Raises:
        ValueError: With `--as-test`, when the success metric was not reached.
    """
    if args is None:
        args = add_rllib_example_script_args().parse_args()
    tune_options = {
        "tune_callbacks": tune_callbacks,
        "scheduler": scheduler,
        "progress_reporter": progress_reporter,
    }
    _refuse(args, tune_options)
    as_test = args.as_test or args.as_release_test
    if stop is None:
        stop = {
            f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": args.stop_reward,
            NUM_ENV_STEPS_SAMPLED_LIFETIME: args.stop_timesteps,
            TRAINING_ITERATION: args.stop_iters,
        }
    config = base_config if keep_config else apply_example_script_args(base_config, args)
    if trainable is not None:
        config.algo_class = trainable
    algo = config.build_algo()
    results: dict[str, Any] = {}
    try:
        while True:
            results = algo.train()
            if args.verbose >= 1:
                ret = lookup(results, f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}")
                print(f"iter={results[TRAINING_ITERATION]} R={ret}")
            if args.checkpoint_freq and results[TRAINING_ITERATION] % args.checkpoint_freq == 0:
                algo.save()
            reached = [k for k, v in stop.items() if _reached(lookup(results, k), v)]
            if reached:
                if args.verbose >= 1:
                    print(f"Stopped: {reached[0]} reached {stop[reached[0]]}.")
                break
        if args.checkpoint_at_end:
            algo.save()
    finally:
        algo.stop()
    if as_test:
        metric = success_metric or {f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": args.stop_reward}
        for key, minimum in metric.items():
            value = lookup(results, key)
            if not _reached(value, minimum):
                raise ValueError(f"`{key}` of {minimum} not reached: the last result had {value}.")
    return results


def _reached(value: Any, threshold: Any) -> bool:
    return isinstance(value, int | float) and value == value and value >= threshold
