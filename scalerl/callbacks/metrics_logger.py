"""MetricsLogger: custom metrics logged by user code, reduced into the result dict (RLlib's
`ray.rllib.utils.metrics.metrics_logger.MetricsLogger`).

`log_value(key, value, reduce="mean", window=None, clear_on_reduce=False)` records a value;
`reduce()` (called by `Algorithm.train()` once per iteration) returns every key's reduced
value, nested by the parts of the key (`("custom", "x")` or `"custom/x"` ->
`result["custom"]["x"]`).

Each EnvRunner has its own logger (`env_runner.metrics`, the `metrics_logger` its callbacks
get). After every `sample()` the runner ships `export()`: what was logged since the last
export (for a key without a window its count, sum, min and max; with a window its last
`window` values). The driver `merge()`s each runner's export under `env_runners/`, so a
key reduces over the values of all runners exactly as if one logger had received them:
the mean of all values (the runners' means weighted by their counts), the sum of sums, the
min of mins, the max of maxes, and a window over the latest values.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

REDUCE = ("mean", "sum", "min", "max")


class _Totals:
    """Count, sum, min and max of values (a key without a window: constant memory)."""

    __slots__ = ("count", "total", "lo", "hi")

    def __init__(self) -> None:
        self.count, self.total, self.lo, self.hi = 0, 0.0, math.inf, -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.lo = min(self.lo, value)
        self.hi = max(self.hi, value)

    def add_totals(self, count: int, total: float, lo: float, hi: float) -> None:
        self.count += count
        self.total += total
        self.lo = min(self.lo, lo)
        self.hi = max(self.hi, hi)

    def as_tuple(self) -> tuple[int, float, float, float]:
        return self.count, self.total, self.lo, self.hi


class _Stat:
    """The values of one key and how they reduce; `pending`: what `export()` ships next."""

    def __init__(self, reduce: str, window: int | None, clear_on_reduce: bool):
        self.reduce, self.window, self.clear_on_reduce = reduce, window, clear_on_reduce
        self.values: Any = _Totals() if window is None else deque(maxlen=window)
        self.pending: Any = _Totals() if window is None else deque(maxlen=window)

    def add(self, value: float) -> None:
        if self.window is None:
            self.values.add(value)
            self.pending.add(value)
        else:
            self.values.append(value)
            self.pending.append(value)

    def clear(self) -> None:
        self.values = _Totals() if self.window is None else deque(maxlen=self.window)

    def peek(self) -> float:
        if self.window is None:
            count, total, lo, hi = self.values.as_tuple()
            if count == 0:
                return float("nan")
            return {"mean": total / count, "sum": total, "min": lo, "max": hi}[self.reduce]
        if not self.values:
            return float("nan")
        values = self.values
        if self.reduce == "mean":
            return math.fsum(values) / len(values)
        return float({"sum": math.fsum, "min": min, "max": max}[self.reduce](values))


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
                metrics; in an EnvRunner, after each `sample()`).
        """
        self._stat(_path(key), reduce, window, clear_on_reduce).add(float(value))

    def _stat(
        self, path: tuple[str, ...], reduce: str, window: int | None, clear_on_reduce: bool
    ) -> _Stat:
        if reduce not in REDUCE:
            raise ValueError(f"`reduce` must be one of {REDUCE}, got {reduce!r}.")
        if window is not None and (isinstance(window, bool) or int(window) < 1):
            raise ValueError(f"`window` must be None or an integer >= 1, got {window!r}.")
        stat = self._stats.get(path)
        if stat is None:
            window = None if window is None else int(window)
            stat = self._stats[path] = _Stat(reduce, window, bool(clear_on_reduce))
        elif stat.reduce != reduce:
            raise ValueError(
                f"`{'/'.join(path)}` was logged with reduce={stat.reduce!r}, now {reduce!r}."
            )
        return stat

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
                stat.clear()
        return out

    def export(self) -> list[tuple]:
        """What was logged since the last `export()`, as plain data for `merge()` in another
        process: (key path, reduce, window, clear_on_reduce, data) per key that got values,
        data being (count, sum, min, max) without a window, else the last `window` values.
        Counts as this logger's reduce: `clear_on_reduce` keys are cleared."""
        out = []
        for path, stat in self._stats.items():
            pending = stat.pending
            if stat.window is None:
                if pending.count == 0:
                    continue
                data: Any = pending.as_tuple()
                stat.pending = _Totals()
            else:
                if not pending:
                    continue
                data = list(pending)
                pending.clear()
            out.append((path, stat.reduce, stat.window, stat.clear_on_reduce, data))
            if stat.clear_on_reduce:
                stat.clear()
        return out

    def merge(self, exported: list[tuple], prefix: tuple[str, ...] = ()) -> None:
        """Add another logger's `export()` (e.g. an EnvRunner's) under `prefix`, as if
        its values had been logged here."""
        for path, reduce, window, clear_on_reduce, data in exported:
            stat = self._stat((*prefix, *path), reduce, window, clear_on_reduce)
            if stat.window is None and window is None:
                stat.values.add_totals(*data)
                stat.pending.add_totals(*data)
            elif window is not None and stat.window is not None:
                stat.values.extend(data)
                stat.pending.extend(data)
            else:
                raise ValueError(
                    f"`{'/'.join((*prefix, *path))}` was logged with window={stat.window!r} "
                    f"here and window={window!r} in an EnvRunner; log it with one window."
                )


def _path(key: str | tuple[str, ...]) -> tuple[str, ...]:
    parts = tuple(key) if isinstance(key, tuple | list) else tuple(str(key).split("/"))
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"A metrics key must be a non-empty name or tuple of names: {key!r}.")
    return parts
