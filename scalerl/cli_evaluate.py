"""`scalerl evaluate CHECKPOINT`: play a checkpoint's greedy policy, optionally to a GIF."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from scalerl.utils.errors import EnvError

GIF_FRAME_STRIDE = 2  # keep every 2nd frame and at most GIF_MAX_FRAMES: GIFs stay small
GIF_MAX_FRAMES = 300


def add_evaluate_parser(sub: argparse._SubParsersAction, count: Any) -> None:
    """Add the `evaluate` command to the `scalerl` subcommands.

    Args:
        sub: The `scalerl` parser's subparsers.
        count: The CLI's `int >= minimum` argument type factory.
    """
    e = sub.add_parser(
        "evaluate",
        help="play a checkpoint's greedy policy (optionally to a GIF)",
        description="Restore a checkpoint and run its policy with explore=False.",
        epilog="Example: scalerl evaluate checkpoints/PPO_CartPole-v1_... --render cartpole.gif",
    )
    e.add_argument("checkpoint", help="checkpoint directory, as written by `scalerl train`")
    e.add_argument(
        "--episodes", type=count(1), default=10, metavar="N", help="episodes (default: 10)"
    )
    e.add_argument("--render", metavar="OUT.gif", help="write an animated GIF of episode 1")
    e.add_argument("--seed", type=count(0), metavar="N", help="seed of the first env reset")
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
        else:  # a custom env: RLlib-style creators read `render_mode` from env_config
            render = {"render_mode": "rgb_array"} if args.render else {}
            env = algo.env_creator(EnvContext({**cfg.env_config, **render}))
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
