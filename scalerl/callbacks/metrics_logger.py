"""MetricsLogger: custom metrics logged by user code, reduced into the result dict (RLlib's
`ray.rllib.utils.metrics.metrics_logger.MetricsLogger`, the driver's part).

`log_value(key, value, reduce="mean", window=None, clear_on_reduce=False)` records a value;
`reduce()` (called by `Algorithm.train()` once per iteration) returns every key's reduced
value, nested by the parts of the key (`("custom", "x")` or `"custom/x"` ->
`result["custom"]["x"]`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

REDUCE = ("mean", "sum", "min", "max")


class _Stat:
    """The values of one key and how they reduce."""

    def __init__(self, reduce: str, window: int | None, clear_on_reduce: bool):
        self.reduce, self.window, self.clear_on_reduce = reduce, window, clear_on_reduce
        self.values: deque = deque(maxlen=window)

    def peek(self) -> float:
        if not self.values:
            return float("nan")
        return float(getattr(np, self.reduce)(np.asarray(self.values, dtype=np.float64)))


class MetricsLogger:
    """Values logged under keys, each reduced by its `reduce` rule over its `window`."""

    def __init__(self) -> None:
        self._stats: dict[tuple[str, ...], _Stat] = {}

    def log_value(
        self,
        key: str | tuple[str, ...],
        value: Any,
        reduce: str = "mean",
        window: int | None = None,
        clear_on_reduce: bool = False,
    ) -> None:
        """Record `value` (a number) under `key`.

        Args:
            key: A name, "a/b", or a tuple ("a", "b") nesting it in the result dict.
            value: A number (or a 0-d array / tensor).
            reduce: "mean", "sum", "min" or "max" over the values kept.
            window: Keep only the last `window` values (None: all; "sum" with None and
                `clear_on_reduce=False` is a lifetime total).
            clear_on_reduce: Forget the values after each `reduce()` (per-iteration
                metrics).
        """
        if reduce not in REDUCE:
            raise ValueError(f"`reduce` must be one of {REDUCE}, got {reduce!r}.")
        if window is not None and (isinstance(window, bool) or int(window) < 1):
            raise ValueError(f"`window` must be None or an integer >= 1, got {window!r}.")
        path = _path(key)
        stat = self._stats.get(path)
        if stat is None:
            stat = self._stats[path] = _Stat(reduce, window, clear_on_reduce)
        elif stat.reduce != reduce:
            raise ValueError(
                f"`{'/'.join(path)}` was logged with reduce={stat.reduce!r}, now {reduce!r}."
            )
        stat.values.append(float(value))

    def peek(self, key: str | tuple[str, ...], default: Any = None) -> Any:
        """The current reduced value of `key` (without clearing it), or `default`."""
        stat = self._stats.get(_path(key))
        return default if stat is None else stat.peek()

    def reduce(self) -> dict[str, Any]:
        """Every key's reduced value as nested dicts; clears `clear_on_reduce` keys."""
        out: dict[str, Any] = {}
        for path, stat in self._stats.items():
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = stat.peek()
            if stat.clear_on_reduce:
                stat.values.clear()
        return out


def _path(key: str | tuple[str, ...]) -> tuple[str, ...]:
    parts = tuple(key) if isinstance(key, tuple | list) else tuple(str(key).split("/"))
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"A metrics key must be a non-empty name or tuple of names: {key!r}.")
    return parts
