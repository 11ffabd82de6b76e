"""The live progress display of `scalerl train`: return, steps/s and ETA per iteration.

On a terminal with tqdm installed (the `progress` extra) it is a progress bar; on a
terminal without tqdm one redrawn line; in logs and pipes one plain line per iteration.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


def format_eta(seconds: float) -> str:
    """`H:MM:SS` or `M:SS`; `?` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressDisplay:
    """Shows each iteration's result and the time left to the stop condition.

    The ETA extrapolates this session's wall time to whichever of `stop_timesteps` and
    `stop_iters` comes first; a reward target is shown next to the return (when it is
    reached cannot be predicted).

    Args:
        stop_timesteps: Stop after this many env steps (lifetime).
        stop_reward: The return target, or None.
        stop_iters: Stop after this many iterations, or None.
        start_steps: Env steps already sampled (a resumed run).
        start_iter: Iterations already run (a resumed run).
        out: Where to write (default: stdout).
        use_tqdm: Force the tqdm bar on or off (default: on if `out` is a terminal and
            tqdm is installed).
    """

    def __init__(
        self,
        stop_timesteps: int,
        stop_reward: float | None = None,
        stop_iters: int | None = None,
        start_steps: int = 0,
        start_iter: int = 0,
        out: TextIO | None = None,
        use_tqdm: bool | None = None,
    ):
        self.out = out or sys.stdout
        self.stop_timesteps, self.stop_reward, self.stop_iters = (
            stop_timesteps,
            stop_reward,
            stop_iters,
        )
        self.start_steps, self.start_iter = start_steps, start_iter
        self.tty = self.out.isatty()
        self.started = time.monotonic()
        self.bar: Any = None
        if use_tqdm is None:
            use_tqdm = self.tty
        if use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(
                    total=1000, file=self.out, dynamic_ncols=True, bar_format="{bar:20}| {desc}"
                )

    def fraction(self, steps: int, it: int) -> float:
        """How far the run is towards its step or iteration limit (the nearer one), 0..1."""
        done = (steps - self.start_steps) / max(self.stop_timesteps - self.start_steps, 1)
        if self.stop_iters is not None:
            done = max(done, (it - self.start_iter) / max(self.stop_iters - self.start_iter, 1))
        return min(max(done, 0.0), 1.0)

    def line(self, result: dict[str, Any]) -> str:
        """The text for one iteration's result (iteration, return, steps/s, steps, time, ETA)."""
        ret = result["env_runners"]["episode_return_mean"]
        steps = result["num_env_steps_sampled_lifetime"]
        it = result["training_iteration"]
        rate = result["env_runners"]["num_env_steps_sampled"] / max(
            result["time_this_iter_s"], 1e-9
        )
        done = self.fraction(steps, it)
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - done) / done if done > 0 else math.inf
        target = f" (target {self.stop_reward:g})" if self.stop_reward is not None else ""
        return (
            f"iter {it:4d} | return {ret:8.2f}{target} | {rate:9,.0f} steps/s | "
            f"{steps:,} steps | {result['time_total_s']:7.1f} s | ETA {format_eta(eta)}"
        )

    def update(self, result: dict[str, Any]) -> None:
        """Show one iteration's result."""
        text = self.line(result)
        if self.bar is not None:
            done = self.fraction(
                result["num_env_steps_sampled_lifetime"], result["training_iteration"]
            )
            self.bar.n = round(1000 * done)
            self.bar.set_description_str(text, refresh=False)
            self.bar.refresh()
        elif self.tty:  # redraw one line
            print(f"\r{text}\033[K", end="", file=self.out, flush=True)
        else:  # logs and pipes: one line per iteration
            print(text, file=self.out, flush=True)

    def message(self, text: str) -> None:
        """Print a line without breaking the display."""
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(f"\r{text}\033[K" if self.tty else text, file=self.out, flush=True)

    def close(self) -> None:
        """End the display (the bar or redrawn line stays visible)."""
        if self.bar is not None:
            self.bar.close()
        elif self.tty:
            print(file=self.out)
