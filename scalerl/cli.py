"""The `scalerl` command line: `scalerl train ...` and `scalerl evaluate CHECKPOINT ...`.

Heavy modules (torch, the algorithms, Ray) are imported inside the commands so that
`scalerl --help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from scalerl.algorithms.registry import ALGORITHM_NAMES
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
GIF_FRAME_STRIDE = 2  # keep every 2nd frame and at most GIF_MAX_FRAMES: GIFs stay small
GIF_MAX_FRAMES = 300


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
        return data, {}, None
    for key in body:
        if key not in TUNED_KEYS:
            raise ConfigError(
                f"`{name}` in `{path}` has unknown key `{key}`.{did_you_mean(key, TUNED_KEYS)}"
                f" Valid keys: {', '.join(TUNED_KEYS)}."
            )
    settings = dict(body.get("config") or {})
    if "env" in body:
        settings["env"] = body["env"]
    stop: dict[str, Any] = {}
    for key, value in (body.get("stop") or {}).items():
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


def train(args: argparse.Namespace) -> int:
    """Run `scalerl train`: train until a stop criterion, checkpoint, then evaluate.

    Args:
        args: The parsed `train` arguments.

    Returns:
        The exit code: 0 when done, 130 when interrupted by Ctrl-C (after checkpointing).
    """
    from scalerl.algorithms.registry import get_algorithm_class

    settings, stop, file_algo = load_config_file(args.config) if args.config else ({}, {}, None)
    flags = {
        "env": args.env,
        "num_env_runners": args.num_env_runners,
        "num_envs_per_env_runner": args.num_envs_per_env_runner,
        "seed": args.seed,
    }
    # Command-line flags override the file; --set key=value wins over all.
    overrides = {
        **settings,
        **{k: v for k, v in flags.items() if v is not None},
        **parse_set(args.set or []),
    }
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
    tty = sys.stdout.isatty()
    interrupted = False
    try:
        while True:
            result = algo.train()
            ret = result["env_runners"]["episode_return_mean"]
            steps = result["num_env_steps_sampled_lifetime"]
            it = result["training_iteration"]
            rate = result["env_runners"]["num_env_steps_sampled"] / max(
                result["time_this_iter_s"], 1e-9
            )
            line = (
                f"iter {it:4d} | return {ret:8.2f} | {rate:9,.0f} steps/s | "
                f"{steps:,} steps | {result['time_total_s']:7.1f} s"
            )
            # On a terminal redraw one line; in logs and pipes keep one line per iteration.
            print(f"\r{line}\033[K" if tty else line, end="" if tty else "\n", flush=True)
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
    if tty:
        print()
    print(f"Stopped: {reason}.")
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
    print(f"Try it: {_command_name()} evaluate {shlex.quote(path)} --render episode.gif")
    return 130 if interrupted else 0


def evaluate(args: argparse.Namespace) -> int:
    """Run `scalerl evaluate`: restore a checkpoint and play greedy episodes.

    Args:
        args: The parsed `evaluate` arguments.

    Returns:
        The exit code (0).
    """
    import gymnasium as gym
    import numpy as np

    from scalerl.algorithms.algorithm import Algorithm, read_algorithm_state
    from scalerl.algorithms.registry import get_algorithm_class
    from scalerl.env.registry import EnvContext
    from scalerl.utils.trust import import_trusted

    if args.render:
        # rgb_array rendering needs no window; without this SDL complains on headless hosts.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    # Evaluation steps one env here: no need to start the Ray runners it was trained with
    # (unless the algorithm exists only with them, as APEX-DQN).
    overrides: dict[str, Any] = {"evaluation_num_env_runners": 0}
    trusted = [import_trusted(name) for name in args.trust or []]
    _, state = read_algorithm_state(args.checkpoint, args.allow_unverified)
    if not get_algorithm_class(state["algo_class"]).needs_env_runners:
        overrides["num_env_runners"] = 0
    algo = Algorithm.from_checkpoint(
        args.checkpoint,
        config_overrides=overrides,
        trusted=trusted,
        allow_unverified=args.allow_unverified,
    )
    try:
        cfg = algo.config
        env_id = getattr(algo.env_creator, "env_id", None)  # set for Gymnasium ids only
        if env_id is not None:
            render = {"render_mode": "rgb_array"} if args.render else {}
            env = gym.make(env_id, **{**cfg.env_config, **render})
        else:
            env = algo.env_creator(EnvContext(cfg.env_config))
        if args.render and env.render_mode != "rgb_array":
            raise EnvError(
                f"--render needs an env with render_mode='rgb_array'; this one has "
                f"{env.render_mode!r}. Let your env creator take it from env_config."
            )
        returns, frames = [], []
        policy = GreedyPolicy(algo)
        for ep in range(args.episodes):
            # Seed only the first reset: later episodes continue the env's RNG, so they
            # differ from each other yet the whole run is reproducible.
            obs, _ = env.reset(seed=args.seed if ep == 0 else None)
            policy.reset()
            ret, length, done = 0.0, 0, False
            while not done:
                if args.render and ep == 0 and length % GIF_FRAME_STRIDE == 0:
                    if len(frames) < GIF_MAX_FRAMES:
                        frames.append(env.render())
                obs, reward, terminated, truncated, _ = env.step(policy(obs))
                policy.reward = float(reward)
                ret, length, done = ret + float(reward), length + 1, terminated or truncated
            returns.append(ret)
            print(f"episode {ep + 1:3d}: return {ret:.2f}, length {length}")
        print(f"mean return over {args.episodes} episodes: {np.mean(returns):.2f}")
        if args.render:
            fps = env.metadata.get("render_fps") or 30
            write_gif(frames, args.render, 1000 * GIF_FRAME_STRIDE / fps)
            print(f"GIF of episode 1 ({len(frames)} frames): {args.render}")
        env.close()
    finally:
        algo.stop()
    return 0


class GreedyPolicy:
    """The algorithm's greedy action for one env, step by step; a recurrent module (LSTM,
    attention, R2D2) carries its state, previous action and reward through the episode,
    as the EnvRunners do (`reset()` at each episode start)."""

    def __init__(self, algo: Any):
        self.algo = algo
        self.stateful = algo.get_module().is_stateful()
        self.reset()

    def reset(self) -> None:
        """Start an episode: the module's initial state, no previous action or reward."""
        module = self.algo.get_module()
        self.state = {k: v.cpu().numpy() for k, v in module.get_initial_state().items()}
        self.action: Any = None
        self.reward: float | None = None

    def __call__(self, obs: Any) -> Any:
        if not self.stateful:
            return self.algo.compute_single_action(obs)
        self.action, self.state, _ = self.algo.compute_single_action(
            obs, self.state, prev_action=self.action, prev_reward=self.reward
        )
        return self.action


def write_gif(frames: list[Any], path: str, frame_ms: float) -> None:
    """Write RGB frames (H, W, 3 uint8 arrays) as a looping animated GIF.

    Args:
        frames: The frames, in order.
        path: Where to write the GIF.
        frame_ms: How long each frame shows, in milliseconds.
    """
    import numpy as np
    from PIL import Image

    # One palette for all frames, from a sample of them: quantizing each frame on its own
    # (Pillow's default) costs ~70 ms a frame; mapping onto a shared palette ~1 ms.
    sample = np.concatenate(frames[:: max(1, len(frames) // 16)])
    palette = Image.fromarray(sample).quantize(255, method=Image.Quantize.FASTOCTREE)
    images = [
        Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames
    ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(frame_ms), loop=0)


def build_parser() -> argparse.ArgumentParser:
    """Build the `scalerl` argument parser with its `train` and `evaluate` commands."""
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
        ("--env", str, "ID", "Gymnasium id or registered env name, e.g. CartPole-v1"),
        ("--config", str, "FILE.yaml", "YAML of config settings: a flat mapping, or RLlib's "
         "tuned-example form {name: {env:, run:, stop:, config:}}"),
        ("--stop-reward", float, "R", "stop when the smoothed training return >= R"),
        ("--stop-timesteps", _count(1), "N",
         f"stop after N env steps (default: {DEFAULT_STOP_TIMESTEPS:,})"),
        ("--stop-iters", _count(1), "N", "stop after N training iterations"),
        ("--num-env-runners", _count(0), "N", "Ray EnvRunner actors; 0 samples in-process"),
        ("--num-envs-per-env-runner", _count(1), "N", "vectorized envs per EnvRunner"),
        ("--seed", _count(0), "N", "random seed"),
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

    e = sub.add_parser(
        "evaluate",
        help="play a checkpoint's greedy policy (optionally to a GIF)",
        description="Restore a checkpoint and run its policy with explore=False.",
        epilog="Example: scalerl evaluate checkpoints/PPO_CartPole-v1_... --render cartpole.gif",
    )
    e.add_argument("checkpoint", help="checkpoint directory, as written by `scalerl train`")
    e.add_argument(
        "--episodes", type=_count(1), default=10, metavar="N", help="episodes (default: 10)"
    )
    e.add_argument("--render", metavar="OUT.gif", help="write an animated GIF of episode 1")
    e.add_argument("--seed", type=_count(0), metavar="N", help="seed of the first env reset")
    e.add_argument(
        "--trust", action="append", metavar="MODULE:NAME",
        help="import this class or function and let the checkpoint use it (a custom env or "
        "RLModule class; repeatable). Checkpoints import nothing on their own",
    )  # fmt: skip
    e.add_argument(
        "--allow-unverified", action="store_true",
        help="load a checkpoint from an older scalerl that has no manifest (trusted files only)",
    )  # fmt: skip
    e.set_defaults(func=evaluate)
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
