"""The `scalerl` command line: `scalerl train ...`, `scalerl evaluate CHECKPOINT ...` and
`scalerl plot RUN_DIR...` (cli_plot.py; the progress display: cli_progress.py).

Heavy modules (torch, the algorithms, Ray) are imported inside the commands so that
`scalerl --help` answers at once.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from scalerl.algorithms.legacy_keys import translate_settings, translate_stop
from scalerl.algorithms.registry import ALGORITHM_NAMES
from scalerl.cli_evaluate import add_evaluate_parser
from scalerl.cli_plot import add_plot_parser
from scalerl.presets import list_presets, load_preset
from scalerl.utils.errors import CheckpointError, ConfigError, EnvError, did_you_mean

DEFAULT_STOP_TIMESTEPS = 1_000_000
# RLlib tuned-example `stop:` keys (current and older spellings) -> our stop option.
STOP_KEYS = {
    "env_runners/episode_return_mean": "stop_reward",
    "env_runners/episode_reward_mean": "stop_reward",
    "episode_reward_mean": "stop_reward",
    "num_env_steps_sampled_lifetime": "stop_timesteps",
    "timesteps_total": "stop_timesteps",
    "training_iteration": "stop_iters",
}
TUNED_KEYS = ("env", "run", "stop", "config")


def load_config_file(path: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """Read a YAML config file in flat or RLlib tuned-example form.

    Args:
        path: The YAML file: either a flat mapping of config settings, or
            `{name: {env: ..., run: ALGO, stop: {...}, config: {...}}}`.

    Returns:
        (config settings, stop options keyed like the CLI's `stop_*` dests, algorithm or None).

    Raises:
        ConfigError: The file is missing, is not YAML, or uses an unknown tuned-example key.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"Could not read config file `{path}`: {e}") from None
    if data is None:
        return {}, {}, None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file `{path}` must hold a mapping of settings.")
    (name, body), *rest = data.items()
    # Tuned-example form: one named entry holding run/stop/config (a flat file's only
    # dict-valued settings, e.g. `model_config`, never have those keys).
    if rest or not isinstance(body, dict) or not {"run", "stop", "config"} & body.keys():
        return translate_settings(data), {}, None  # RLlib's old names (legacy_keys.py)
    for key in body:
        if key not in TUNED_KEYS:
            raise ConfigError(
                f"`{name}` in `{path}` has unknown key `{key}`.{did_you_mean(key, TUNED_KEYS)}"
                f" Valid keys: {', '.join(TUNED_KEYS)}."
            )
    settings = translate_settings(dict(body.get("config") or {}))
    if "env" in body:
        settings["env"] = body["env"]
    stop: dict[str, Any] = {}
    for key, value in translate_stop(body.get("stop") or {}).items():
        if key not in STOP_KEYS:
            raise ConfigError(
                f"Unknown stop criterion `{key}` in `{path}`.{did_you_mean(key, STOP_KEYS)}"
                f" Valid: {', '.join(STOP_KEYS)}."
            )
        stop[STOP_KEYS[key]] = value
    return settings, stop, body.get("run")


def _count(minimum: int):
    """An argparse type: an int >= minimum (so e.g. `--episodes 0` fails at parse time)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its error messages
    return parse


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs as settings; each value is read as YAML (`1e-3`, `[64, 64]`,
    `true`, `null`, a string)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {pair!r}: write it as KEY=VALUE, e.g. --set lr=1e-3.")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML ({e}).") from None
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string; numbers are meant
            try:
                value = float(value)
            except ValueError:
                pass
        out[key.strip()] = value
    return out


def _restore(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    """The algorithm of checkpoint `--restore`, its settings changed by `overrides`; its
    counters (iterations, env steps) continue, so the stop criteria count from the start."""
    from scalerl.algorithms.algorithm import Algorithm, read_algorithm_state
    from scalerl.algorithms.registry import get_algorithm_class
    from scalerl.utils.trust import import_trusted

    _, state = read_algorithm_state(args.restore)
    if args.algo and get_algorithm_class(args.algo).__name__ != state["algo_class"]:
        raise ConfigError(
            f"--restore {args.restore} is a {state['algo_class']} checkpoint, but --algo is "
            f"{args.algo}; drop --algo (the checkpoint names its algorithm)."
        )
    trusted = [import_trusted(name) for name in args.trust or []]
    return Algorithm.from_checkpoint(args.restore, config_overrides=overrides, trusted=trusted)


def env_from_name(name: Any) -> Any:
    """The env the user named: `module:Class` (or `module:function`, a creator) is imported,
    because the user typed it, and registered as trusted so that the run's checkpoints may
    name it; registered names, Gymnasium ids and Gymnasium's `module:EnvId` stay as given.

    Raises:
        ConfigError: The module cannot be imported, or has no such class or function.
    """
    import importlib

    from scalerl.env.registry import is_registered_env
    from scalerl.utils.trust import register_trusted

    if not isinstance(name, str) or ":" not in name or is_registered_env(name):
        return name
    module_name, _, attr = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"--env {name}: cannot import module `{module_name}` ({e}).") from None
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        if is_registered_env(attr):  # Gymnasium's `module:EnvId`: the import registered it
            return name
        raise ConfigError(
            f"--env {name}: module `{module_name}` has no `{attr}`; write `module:Class` "
            "(an env class or a creator function) or a Gymnasium id."
        ) from None
    if not callable(obj):
        raise ConfigError(f"--env {name}: `{attr}` is not an env class or creator function.")
    register_trusted(obj)
    return obj


def train(args: argparse.Namespace) -> int:
    """Run `scalerl train`: train until a stop criterion, checkpoint, then evaluate.

    Args:
        args: The parsed `train` arguments.

    Returns:
        The exit code: 0 when done, 130 when interrupted by Ctrl-C (after checkpointing).
    """
    from scalerl.algorithms.registry import get_algorithm_class

    settings, stop, file_algo = load_config_file(args.config) if args.config else ({}, {}, None)
    if args.preset:  # the preset under the --config file, flags and --set
        preset = load_preset(args.preset)
        settings, stop = {**preset.settings, **settings}, {**preset.stop, **stop}
        file_algo = file_algo or preset.algo
    flags = {
        "env": args.env,
        "num_env_runners": args.num_env_runners,
        "num_envs_per_env_runner": args.num_envs_per_env_runner,
        "seed": args.seed,
        "metrics_num_episodes_for_smoothing": args.smoothing,
        "logger_config": None if args.log_dir is None else {"logdir": args.log_dir},
    }
    # Command-line flags override the file; --set key=value wins over all.
    overrides = {
        **settings,
        **{k: v for k, v in flags.items() if v is not None},
        **parse_set(args.set or []),
    }
    env_arg = overrides.get("env")
    if env_arg is not None:  # typed by the user (flag, file or --set): `module:Class` imports
        overrides["env"] = env_from_name(env_arg)
    restored = None
    if args.restore:
        restored = _restore(args, overrides)
        algo_cls, config = type(restored), restored.config
    else:
        algo_cls = get_algorithm_class(args.algo or file_algo or "PPO")
        config = algo_cls.get_default_config().update_from_dict(overrides)
    if config.env is None:
        raise ConfigError("No environment: pass `--env ID` or set `env:` in the --config file.")
    for dest in ("stop_reward", "stop_timesteps", "stop_iters"):
        if getattr(args, dest) is None:
            setattr(args, dest, stop.get(dest))
    if args.stop_timesteps is None:
        args.stop_timesteps = DEFAULT_STOP_TIMESTEPS

    from scalerl.env.registry import env_name

    env = env_name(config.env)
    ckpt_dir = args.checkpoint_dir or str(
        Path("checkpoints")
        / f"{algo_cls.__name__}_{env}_{datetime.now():%Y%m%d-%H%M%S}".replace("/", "_")
    )
    algo = restored if restored is not None else config.build_algo()
    until = [f"{args.stop_timesteps:,} env steps"]
    if args.stop_reward is not None:
        until.insert(0, f"return >= {args.stop_reward}")
    if args.stop_iters is not None:
        until.append(f"{args.stop_iters} iterations")
    resumed = f" (resumed at iteration {algo.training_iteration})" if restored else ""
    print(
        f"Training {algo_cls.__name__} on {env}{resumed} until {' or '.join(until)}.",
        flush=True,
    )
    from scalerl.cli_progress import ProgressDisplay

    display = ProgressDisplay(
        args.stop_timesteps,
        args.stop_reward,
        args.stop_iters,
        start_steps=algo.num_env_steps_sampled_lifetime,
        start_iter=algo.training_iteration,
    )
    interrupted, shown_logdir = False, False
    try:
        while True:
            result = algo.train()
            ret = result["env_runners"]["episode_return_mean"]
            steps = result["num_env_steps_sampled_lifetime"]
            it = result["training_iteration"]
            if algo.logdir is not None and not shown_logdir:  # created by the first train()
                display.message(f"Run directory: {algo.logdir}")
                shown_logdir = True
            display.update(result)
            if args.checkpoint_freq and it % args.checkpoint_freq == 0:
                algo.save_to_path(ckpt_dir)  # replaced atomically; resume with --restore
            if args.stop_reward is not None and ret >= args.stop_reward:  # False for NaN
                reason = f"smoothed return {ret:.2f} >= {args.stop_reward}"
            elif steps >= args.stop_timesteps:
                reason = f"{steps:,} env steps >= {args.stop_timesteps:,}"
            elif args.stop_iters is not None and it >= args.stop_iters:
                reason = f"{it} iterations"
            else:
                continue
            break
    except KeyboardInterrupt:
        interrupted = True
        reason = "interrupted (Ctrl-C)"
    display.close()
    print(f"Stopped: {reason}.")
    if algo.logdir is not None:
        print(f"Results: {algo.logdir} (plot: {_command_name()} plot {shlex.quote(algo.logdir)})")
    try:
        path = algo.save_to_path(ckpt_dir)
        print(f"Checkpoint: {path}")
        if not interrupted and args.eval_episodes > 0:
            # A fresh greedy evaluation: the training return above is smoothed and explores.
            algo.config.evaluation_duration = args.eval_episodes
            algo.config.evaluation_duration_unit = "episodes"
            res = algo.evaluate()["env_runners"]
            print(
                f"Evaluation (explore=False, {args.eval_episodes} episodes): mean return "
                f"{res['episode_return_mean']:.2f}"
            )
    finally:
        algo.stop()
    # An env the CLI imported (`module:Class`) loads back only when trusted by name.
    imported = isinstance(env_arg, str) and not isinstance(overrides["env"], str)
    trust = f" --trust {env_arg}" if imported and not env_arg.startswith("scalerl.") else ""
    print(f"Try it: {_command_name()} evaluate {shlex.quote(path)}{trust} --render episode.gif")
    return 130 if interrupted else 0


def build_parser() -> argparse.ArgumentParser:
    """Build the `scalerl` argument parser with its `train`, `evaluate` and `plot` commands."""
    from importlib.metadata import version

    parser = argparse.ArgumentParser(
        prog="scalerl",
        description="Train and evaluate RL agents with scalerl (RLlib's API, faster).",
        epilog="Example: scalerl train --algo PPO --env CartPole-v1 --stop-reward 450",
    )
    parser.add_argument("--version", action="version", version=f"scalerl {version('scalerl')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train on an environment, save a checkpoint, evaluate it",
        description="Train until a stop criterion is met (or Ctrl-C), save a checkpoint, then "
        "evaluate the greedy policy. Flags override the --config file.",
        epilog="Example: scalerl train --algo PPO --env CartPole-v1 --stop-reward 450 --seed 0",
    )
    # (flag, type, metavar, help); every default is None so we can tell "given" from "not".
    for flag, typ, metavar, text in [
        ("--algo", str, "NAME", f"algorithm: {', '.join(ALGORITHM_NAMES)} (default: the "
         "file's `run:`, else PPO)"),
        ("--env", str, "ID", "Gymnasium id, registered env name, or an env class as "
         "module:Class, e.g. CartPole-v1 or "
         "scalerl.examples.envs.stateless_cartpole:StatelessCartPole"),
        ("--config", str, "FILE.yaml", "YAML of config settings: a flat mapping, or RLlib's "
         "tuned-example form {name: {env:, run:, stop:, config:}}"),
        ("--preset", str, "NAME", f"tuned settings and stop criteria: {', '.join(list_presets())}"
         " (the --config file, flags and --set override them)"),
        ("--stop-reward", float, "R", "stop when the smoothed training return >= R"),
        ("--stop-timesteps", _count(1), "N",
         f"stop after N env steps (default: {DEFAULT_STOP_TIMESTEPS:,})"),
        ("--stop-iters", _count(1), "N", "stop after N training iterations"),
        ("--num-env-runners", _count(0), "N", "Ray EnvRunner actors; 0 samples in-process"),
        ("--num-envs-per-env-runner", _count(1), "N", "vectorized envs per EnvRunner"),
        ("--seed", _count(0), "N", "random seed"),
        ("--smoothing", _count(1), "N", "episodes averaged in the reported return "
         "(metrics_num_episodes_for_smoothing; default: 100)"),
        ("--log-dir", str, "DIR", "the run directory (params, progress.csv, result.json, "
         "TensorBoard) (default: $SCALERL_RESULTS_DIR or ~/scalerl_results, "
         "/<ALGO>_<env>_<date>_<time>)"),
        ("--checkpoint-dir", str, "DIR", "where to save the final checkpoint "
         "(default: ./checkpoints/<ALGO>_<env>_<YYYYmmdd-HHMMSS>)"),
    ]:  # fmt: skip
        t.add_argument(flag, type=typ, metavar=metavar, help=text)
    t.add_argument(
        "--restore", metavar="CHECKPOINT",
        help="resume training from a checkpoint (counters continue; flags and --set change "
        "its settings)",
    )  # fmt: skip
    t.add_argument(
        "--checkpoint-freq", type=_count(1), metavar="N",
        help="also save the checkpoint every N iterations (to --checkpoint-dir)",
    )  # fmt: skip
    t.add_argument(
        "--trust", action="append", metavar="module:Name",
        help="with --restore: a class or function the checkpoint may name (repeatable)",
    )  # fmt: skip
    t.add_argument(
        "--set", action="append", metavar="KEY=VALUE",
        help="set any config setting (repeatable; values read as YAML), e.g. --set lr=1e-3 "
        "--set model_config='{fcnet_hiddens: [64, 64]}'; wins over --config and other flags",
    )  # fmt: skip
    t.add_argument(
        "--eval-episodes", type=_count(0), default=20, metavar="N",
        help="greedy episodes in the final evaluation; 0 skips it (default: 20)",
    )  # fmt: skip
    t.set_defaults(func=train)

    add_evaluate_parser(sub, _count)
    add_plot_parser(sub, _count)
    return parser


def _command_name() -> str:
    """`scalerl` if that is on PATH, else the full path of this venv's script."""
    import shutil

    script = Path(sys.executable).with_name("scalerl")
    if shutil.which("scalerl") == str(script) or not script.exists():
        return "scalerl"
    return shlex.quote(str(script))


def main(argv: list[str] | None = None) -> int:
    """Run the `scalerl` command line.

    Args:
        argv: The arguments (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0 on success, 2 for a config, env or checkpoint error (message on
        stderr, no traceback), 130 when interrupted.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, EnvError) as e:
        # These errors already say what to fix; a traceback would only bury the message.
        print(f"scalerl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # A second Ctrl-C (e.g. while saving): leave without a traceback.
        print("\nInterrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
