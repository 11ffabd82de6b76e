"""Algorithm names -> classes, imported lazily (used by checkpoints and the CLI)."""

from __future__ import annotations

import importlib

from scalerl.utils.errors import ConfigError, did_you_mean

ALGORITHMS = {
    "PPO": ("scalerl.algorithms.ppo", "PPO"),
    "PG": ("scalerl.algorithms.pg", "PG"),
    "A2C": ("scalerl.algorithms.a2c", "A2C"),
    "DQN": ("scalerl.algorithms.dqn", "DQN"),
    "APEXDQN": ("scalerl.algorithms.apex_dqn", "APEXDQN"),
    "APEX": ("scalerl.algorithms.apex_dqn", "APEXDQN"),
    "R2D2": ("scalerl.algorithms.r2d2", "R2D2"),
    "SAC": ("scalerl.algorithms.sac", "SAC"),
}


# The names the docs use, as `--help` lists them (any case, "-" and "_" ignored).
ALGORITHM_NAMES = ("PPO", "PG", "A2C", "DQN", "APEX-DQN", "R2D2", "SAC")


def get_algorithm_class(name: str) -> type:
    """The Algorithm class registered under `name` (case-insensitive, "-" and "_" ignored:
    "ppo", "APEX-DQN", "apex_dqn").

    Raises:
        ConfigError: If no algorithm has that name; the message suggests the nearest.
    """
    key = str(name).upper().replace("-", "").replace("_", "")
    if key not in ALGORITHMS:
        raise ConfigError(
            f"Unknown algorithm `{name}`.{did_you_mean(key, ALGORITHMS)} "
            f"Available: {', '.join(ALGORITHM_NAMES)}."
        )
    module, attr = ALGORITHMS[key]
    return getattr(importlib.import_module(module), attr)
