"""Errors that tell the user what to change."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration setting is unknown or has an invalid value."""


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or not a scalerl checkpoint."""


class EnvError(ValueError):
    """An environment cannot be created or does not behave as its spaces declare."""


class NonFiniteUpdateError(FloatingPointError):
    """A learner's loss or gradient stayed NaN/inf for several updates in a row."""


class EnvRunnerError(RuntimeError):
    """An EnvRunner failed (died, raised or stalled) and fault tolerance could not help."""


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """Return ' Did you mean `x`?' for the nearest valid name, or ''."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def unknown_keys_error(where: str, keys: Iterable[str], valid: Iterable[str]) -> ConfigError:
    """The ConfigError for unknown setting names: each with its nearest valid name, then all valid.

    Args:
        where: What got the settings, e.g. "`config.training()`".
        keys: The unknown names.
        valid: The valid names.
    """
    valid = sorted(valid)
    parts = [
        f"`{k}`" + (f" ({did_you_mean(k, valid).strip()})" if did_you_mean(k, valid) else "")
        for k in keys
    ]
    return ConfigError(
        f"{where} got unknown setting(s): {'; '.join(parts)}. Valid settings: {', '.join(valid)}."
    )
