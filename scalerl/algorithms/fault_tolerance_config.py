"""`config.fault_tolerance(...)`: RLlib's settings for failing EnvRunners and envs.

Meanings as in RLlib (see docs/design.md, "Fault tolerance"):

- `restart_failed_env_runners`: replace an EnvRunner actor that died, raised or stalled
  by a new one with the current weights and filter statistics.
- `max_num_env_runner_restarts`: restarts allowed over the group's lifetime.
- `delay_between_env_runner_restarts_s`: wait before a restart (remote dependencies get
  time to recover; tests set 0).
- `ignore_env_runner_failures`: without a restart, drop the failed runner and go on
  with the others (instead of raising).
- `restart_failed_sub_environments`: an env whose `step()`/`reset()` raises is closed,
  recreated and reset inside its runner; its episode is dropped.
- `env_runner_health_probe_timeout_s`: after `sample_timeout_s`, how long a silent
  runner gets to answer a health probe before it counts as stalled.
- `env_runner_restore_timeout_s`: how long a new runner may take to come up with its
  weights before the restart counts as failed.
"""

from __future__ import annotations

from typing import Any

from scalerl.utils.errors import ConfigError

# In the order of `config.fault_tolerance(...)`'s arguments (RLlib's).
FAULT_TOLERANCE_DEFAULTS: dict[str, Any] = {
    "restart_failed_env_runners": True,
    "ignore_env_runner_failures": False,
    "max_num_env_runner_restarts": 1000,
    "delay_between_env_runner_restarts_s": 60.0,
    "restart_failed_sub_environments": False,
    "env_runner_health_probe_timeout_s": 30.0,
    "env_runner_restore_timeout_s": 1800.0,
}
FAULT_TOLERANCE_SETTINGS = tuple(FAULT_TOLERANCE_DEFAULTS)
_FLAGS = (
    "restart_failed_env_runners",
    "ignore_env_runner_failures",
    "restart_failed_sub_environments",
)
_SECONDS = (
    "delay_between_env_runner_restarts_s",
    "env_runner_health_probe_timeout_s",
    "env_runner_restore_timeout_s",
)


def validate_fault_tolerance(config: Any) -> None:
    """Flags are bools, the restart budget an integer >= 0, times finite numbers >= 0
    (and `sample_timeout_s` a number > 0 or None)."""
    for name in _FLAGS:
        value = getattr(config, name)
        if not isinstance(value, bool):
            raise ConfigError(f"`{name}` must be True or False, got {value!r}.")
    value = config.max_num_env_runner_restarts
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"`max_num_env_runner_restarts` must be an integer >= 0, got {value!r}.")
    for name in _SECONDS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
            raise ConfigError(f"`{name}` must be a finite number of seconds >= 0, got {value!r}.")
    value = config.sample_timeout_s
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e12
    ):
        raise ConfigError(
            f"`sample_timeout_s` must be a finite number of seconds > 0 (or None: wait "
            f"forever), got {value!r}."
        )
