"""`scalerl plot RUN_DIR...`: learning curves of run directories to an image file."""

from __future__ import annotations

import argparse
from typing import Any

from scalerl.utils.plotting import DEFAULT_METRIC, DEFAULT_X


def add_plot_parser(sub: argparse._SubParsersAction, count: Any) -> None:
    """Add the `plot` command to the `scalerl` subcommands.

    Args:
        sub: The `scalerl` parser's subparsers.
        count: The CLI's `int >= minimum` argument type factory.
    """
    p = sub.add_parser(
        "plot",
        help="draw learning curves of run directories into a PNG",
        description="Plot a metric of one or more run directories (progress.csv, else "
        "result.json) in one figure, one line per run.",
        epilog="Example: scalerl plot ~/scalerl_results/PPO_CartPole-v1_* --smoothing 5 "
        "--output curves.png",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to plot")
    p.add_argument(
        "--metric", default=DEFAULT_METRIC, metavar="KEY",
        help=f"the result key to plot, flattened with / (default: {DEFAULT_METRIC})",
    )  # fmt: skip
    p.add_argument(
        "--x", default=DEFAULT_X, metavar="KEY",
        help=f"the x axis key, e.g. training_iteration or time_total_s (default: {DEFAULT_X})",
    )  # fmt: skip
    p.add_argument(
        "--smoothing", type=count(1), default=1, metavar="N",
        help="average each point with the N-1 before it (default: 1, none)",
    )  # fmt: skip
    p.add_argument(
        "--output", "-o", default="learning_curves.png", metavar="OUT.png",
        help="the image to write; the suffix picks the format (default: learning_curves.png)",
    )  # fmt: skip
    p.set_defaults(func=plot)


def plot(args: argparse.Namespace) -> int:
    """Run `scalerl plot`: draw the curves and print the file written.

    Args:
        args: The parsed `plot` arguments.

    Returns:
        The exit code (0).
    """
    from scalerl.utils.plotting import plot_runs

    path = plot_runs(args.run_dirs, args.output, args.metric, args.x, args.smoothing)
    print(f"Wrote {path} ({len(args.run_dirs)} run{'s' if len(args.run_dirs) > 1 else ''}).")
    return 0
