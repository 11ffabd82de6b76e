"""The config copies that carry callbacks: none for the learners, the EnvRunner events'
for the EnvRunners (local or Ray actors), and the merge of logged metrics into results."""

from __future__ import annotations

from typing import Any

from scalerl.callbacks.callbacks import (
    ALL_EVENTS,
    DRIVER_EVENTS,
    ENV_RUNNER_EVENTS,
    env_runner_classes,
)
from scalerl.utils.errors import ConfigError


def without_callbacks(config: Any) -> Any:
    """A copy of `config` without callbacks: what the learners get (they call none)."""
    out = config.copy()
    out.callbacks_class = None
    for event in ALL_EVENTS:
        setattr(out, f"callbacks_{event}", None)
    return out


def env_runner_config(config: Any, num_env_runners: int) -> Any:
    """A copy of `config` for EnvRunners: the callback classes that override an EnvRunner
    event and the EnvRunner events' functions; not what only the driver calls (so a class
    with driver events only need not be importable in Ray actors).

    Ray actors get it the way they get the env creator: serialized by Ray, classes and
    functions of importable modules by reference, others (a script's, a lambda) by value.
    Something Ray cannot serialize is a ConfigError naming the setting."""
    out = config.copy()
    out.callbacks_class = env_runner_classes(config.callbacks_class)
    for event in DRIVER_EVENTS:
        setattr(out, f"callbacks_{event}", None)
    if num_env_runners > 0:
        for key in ("callbacks_class", *(f"callbacks_{e}" for e in ENV_RUNNER_EVENTS)):
            check_serializable(key, getattr(out, key))
    return out


def check_serializable(key: str, value: Any) -> None:
    """`value` can travel to Ray actors (Ray's own serializer, in memory), or a ConfigError."""
    if value is None:
        return
    from ray import cloudpickle

    try:
        cloudpickle.dumps(value)
    except Exception as e:
        setting = "callbacks_class" if key == "callbacks_class" else key.removeprefix("callbacks_")
        raise ConfigError(
            f"`config.callbacks({setting}=...)`: {value!r} cannot be sent to the Ray "
            f"EnvRunners ({type(e).__name__}: {e}). Define it at the top level of a module "
            "(no reference to open files, locks or sockets), or use `num_env_runners=0`."
        ) from e


def merge_metrics(result: dict, custom: dict) -> None:
    """Nested custom metrics into the result dict, without replacing scalerl's own dicts."""
    for key, value in custom.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            merge_metrics(result[key], value)
        else:
            result[key] = value
