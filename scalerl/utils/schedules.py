"""Piecewise-linear schedules over the lifetime env-step count (RLlib's format)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scalerl.utils.errors import ConfigError

ScheduleSpec = float | Sequence[Sequence[float]]


def validate_schedule(
    name: str,
    value: ScheduleSpec,
    *,
    minimum: float | None = None,
    positive: bool = False,
    maximum: float | None = None,
) -> None:
    """A schedule is a number or a list of [timestep, value] pairs, timesteps from 0 upward.

    Every value must be finite and, if given, >= `minimum` and <= `maximum`. With
    `positive` (learning rates) the value must be > 0; a schedule may still end at 0 (a
    decay to zero), but its first value must be > 0.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Sequence):
        raise ConfigError(
            f"`{name}` must be a number or a list of [timestep, value] pairs, got {value!r}."
        )
    if isinstance(value, int | float):
        _check_value(name, value, minimum, positive, maximum)
        return
    try:
        steps = [float(t) for t, _ in value]
        values = [float(v) for _, v in value]
    except (TypeError, ValueError):
        raise ConfigError(
            f"`{name}` must be a number or a list of [timestep, value] pairs, got {value!r}."
        ) from None
    if not steps or steps[0] != 0 or any(b < a for a, b in zip(steps, steps[1:])):
        raise ConfigError(
            f"`{name}` schedule must start at timestep 0 and have increasing timesteps, "
            f"got {value!r}."
        )
    if not all(math.isfinite(t) for t in steps):
        raise ConfigError(f"`{name}` schedule has a non-finite timestep: {value!r}.")
    for k, v in enumerate(values):
        last = k == len(values) - 1 and k > 0
        where = f"{name}` schedule value [{steps[k]:g}, {v!r}] (of {value!r})"
        _check_value(name, v, minimum, positive and not last, maximum, where)
        if positive and last and not v >= 0:
            raise ConfigError(f"`{where} must be >= 0.")


def _check_value(
    name: str,
    v: float,
    minimum: float | None,
    positive: bool,
    maximum: float | None,
    where: str | None = None,
) -> None:
    what = where or f"{name}`"
    if not math.isfinite(v):
        raise ConfigError(f"`{what} must be a finite number, got {v!r}.")
    if positive and not v > 0:
        hint = " (a schedule may decay to 0 at its last point)" if where else ""
        raise ConfigError(f"`{what} must be > 0, got {v!r}{hint}.")
    if minimum is not None and v < minimum:
        raise ConfigError(f"`{what} must be >= {minimum}, got {v!r}.")
    if maximum is not None and v > maximum:
        raise ConfigError(f"`{what} must be <= {maximum}, got {v!r}.")


class Scheduler:
    """Value of a fixed number or a piecewise-linear [[t0, v0], [t1, v1], ...] schedule."""

    def __init__(self, spec: ScheduleSpec):
        if isinstance(spec, int | float):
            self._t, self._v = np.array([0.0]), np.array([float(spec)])
        else:
            self._t = np.array([float(t) for t, _ in spec])
            self._v = np.array([float(v) for _, v in spec])

    def value(self, timestep: int) -> float:
        """The schedule's value at `timestep`: linear between points, constant beyond the ends."""
        return float(np.interp(timestep, self._t, self._v))
