"""Piecewise-linear schedules over the lifetime env-step count (RLlib's format)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scalerl.utils.errors import ConfigError

ScheduleSpec = float | Sequence[Sequence[float]]


def validate_schedule(name: str, value: ScheduleSpec) -> None:
    """A schedule is a number or a list of [timestep, value] pairs, timesteps from 0 upward."""
    if isinstance(value, int | float):
        return
    try:
        steps = [float(t) for t, _ in value]
        [float(v) for _, v in value]
    except (TypeError, ValueError):
        raise ConfigError(
            f"`{name}` must be a number or a list of [timestep, value] pairs, got {value!r}."
        ) from None
    if not steps or steps[0] != 0 or any(b < a for a, b in zip(steps, steps[1:])):
        raise ConfigError(
            f"`{name}` schedule must start at timestep 0 and have increasing timesteps, "
            f"got {value!r}."
        )


class Scheduler:
    """Value of a fixed number or a piecewise-linear [[t0, v0], [t1, v1], ...] schedule."""

    def __init__(self, spec: ScheduleSpec):
        if isinstance(spec, int | float):
            self._t, self._v = np.array([0.0]), np.array([float(spec)])
        else:
            self._t = np.array([float(t) for t, _ in spec])
            self._v = np.array([float(v) for _, v in spec])

    def value(self, timestep: int) -> float:
        return float(np.interp(timestep, self._t, self._v))
