"""Learning curves from run directories (`scalerl plot`): progress.csv or result.json."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from scalerl.utils.errors import ConfigError
from scalerl.utils.run_logger import PROGRESS_CSV, RESULT_JSON, flatten

DEFAULT_METRIC = "env_runners/episode_return_mean"
DEFAULT_X = "num_env_steps_sampled_lifetime"


def _number(text: object) -> float:
    """A cell as a float; empty, null or non-numeric cells are NaN."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def read_progress(run_dir: str | Path) -> dict[str, list[float]]:
    """The numeric columns of a run directory: column -> one value per iteration (NaN
    where missing), read from `progress.csv`, else from `result.json`.

    Raises:
        ConfigError: The directory has neither file.
    """
    run_dir = Path(run_dir)
    if (run_dir / PROGRESS_CSV).is_file():
        with open(run_dir / PROGRESS_CSV, newline="") as f:
            rows = list(csv.DictReader(f))
    elif (run_dir / RESULT_JSON).is_file():
        lines = (run_dir / RESULT_JSON).read_text().splitlines()
        rows = [flatten(json.loads(line)) for line in lines if line.strip()]
    else:
        raise ConfigError(
            f"`{run_dir}` has no {PROGRESS_CSV} or {RESULT_JSON}: pass a run directory "
            "written by `algo.train()` or `scalerl train` (its path is `algo.logdir`)."
        )
    keys = dict.fromkeys(k for row in rows for k in row)
    columns = {k: [_number(row.get(k)) for row in rows] for k in keys}
    return {k: v for k, v in columns.items() if any(math.isfinite(x) for x in v)}


def smooth(values: list[float], window: int) -> list[float]:
    """The trailing mean over the last `window` values (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def curve(
    columns: dict[str, list[float]], run: str, metric: str, x: str
) -> tuple[list[float], list[float]]:
    """The (x, y) points of `metric` over `x` where both are finite.

    Raises:
        ConfigError: `metric` or `x` is not a numeric column; the message lists them.
    """
    for name, flag in ((metric, "--metric"), (x, "--x")):
        if name not in columns:
            available = "\n  ".join(sorted(columns))
            raise ConfigError(
                f"{flag} `{name}` is not in `{run}`. Available metrics:\n  {available}"
            )
    points = [(a, b) for a, b in zip(columns[x], columns[metric]) if math.isfinite(a + b)]
    return [a for a, _ in points], [b for _, b in points]


def plot_runs(
    run_dirs: list[str | Path],
    output: str | Path,
    metric: str = DEFAULT_METRIC,
    x: str = DEFAULT_X,
    smoothing: int = 1,
) -> Path:
    """Draw `metric` over `x` for each run (one line each, labelled with the directory's
    name, or the path given where names repeat) into one figure.

    Args:
        run_dirs: Run directories (`algo.logdir`).
        output: The image file to write (its suffix picks the format, e.g. .png, .svg).
        metric: The flattened result key to plot, e.g. `env_runners/episode_return_mean`.
        x: The x axis column, e.g. `num_env_steps_sampled_lifetime` or `training_iteration`.
        smoothing: Average each point with the previous `smoothing - 1` ones.

    Returns:
        The path written.

    Raises:
        ConfigError: A directory has no progress file, a column is missing, or matplotlib
            is not installed.
    """
    curves = [(Path(d), curve(read_progress(d), str(d), metric, x)) for d in run_dirs]
    try:
        from matplotlib.figure import Figure  # no pyplot: no backend, no global state
    except ImportError:
        raise ConfigError("`scalerl plot` needs matplotlib: pip install 'scalerl[plot]'.") from None
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    names = [run_dir.resolve().name for run_dir, _ in curves]
    if len(set(names)) < len(names):  # e.g. `a/run` and `b/run`: label with the paths given
        names = [str(run_dir) for run_dir, _ in curves]
    for name, (_, (xs, ys)) in zip(names, curves):
        ax.plot(xs, smooth(ys, smoothing), label=name)
    ax.set_xlabel(x)
    ax.set_ylabel(metric + (f" (mean of {smoothing})" if smoothing > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)  # the suffix picks the format (Agg for .png)
    return output
