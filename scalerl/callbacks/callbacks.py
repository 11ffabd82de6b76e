"""Callbacks: user code called at the algorithm's events (RLlib's `RLlibCallback`).

Subclass `RLlibCallback` (alias `DefaultCallbacks`) and pass the class, or a list of classes,
to `config.callbacks(callbacks_class=...)`, or pass functions per event
(`config.callbacks(on_train_result=fn)`). Each is called with RLlib's keyword arguments.

Called today, in the driver: `on_algorithm_init`, `on_train_result`, `on_evaluate_start`,
`on_evaluate_end`, `on_checkpoint_loaded`. The EnvRunner events (`on_episode_*`,
`on_sample_end`, `on_environment_created`) and `on_env_runners_recreated` are not called
yet: a callback that defines them, or a config that sets them, is refused with a
ConfigError at build rather than silently never called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scalerl.utils.errors import ConfigError

#: The events this scalerl calls, in the driver.
DRIVER_EVENTS = (
    "on_algorithm_init",
    "on_train_result",
    "on_evaluate_start",
    "on_evaluate_end",
    "on_checkpoint_loaded",
)
#: RLlib's events that scalerl does not call yet.
NOT_YET_EVENTS = (
    "on_episode_created",
    "on_episode_start",
    "on_episode_step",
    "on_episode_end",
    "on_sample_end",
    "on_environment_created",
    "on_env_runners_recreated",
)


class RLlibCallback:
    """Override the events you need; every method takes keyword arguments only (and
    `**kwargs`, so that later scalerl versions may pass more)."""

    def on_algorithm_init(self, *, algorithm: Any, metrics_logger: Any = None, **kwargs) -> None:
        """At the end of `Algorithm.__init__` (the algorithm is built, not yet trained)."""

    def on_train_result(
        self, *, algorithm: Any, metrics_logger: Any = None, result: dict, **kwargs
    ) -> None:
        """After each `train()` iteration, with its `result` dict (changes to it are what
        `train()` returns)."""

    def on_evaluate_start(self, *, algorithm: Any, metrics_logger: Any = None, **kwargs) -> None:
        """Before `evaluate()` runs its episodes."""

    def on_evaluate_end(
        self,
        *,
        algorithm: Any,
        metrics_logger: Any = None,
        evaluation_metrics: dict,
        **kwargs,
    ) -> None:
        """After `evaluate()`, with the evaluation results it returns."""

    def on_checkpoint_loaded(self, *, algorithm: Any, **kwargs) -> None:
        """After `restore_from_path` (and so `from_checkpoint`) loaded a checkpoint."""


DefaultCallbacks = RLlibCallback  # RLlib's older name


class Callbacks:
    """The callback instances and per-event functions of one algorithm, called together.

    Args:
        classes: `callbacks_class`: an RLlibCallback subclass, a list of them, or None.
        functions: Event name -> a function or a list of functions (the `on_*` settings).
    """

    def __init__(self, classes: Any, functions: dict[str, Any]):
        classes = [] if classes is None else classes
        classes = list(classes) if isinstance(classes, list | tuple) else [classes]
        check_callback_classes(classes)
        self.instances = [cls() for cls in classes]
        self.functions: dict[str, list[Callable]] = {}
        for event, fns in functions.items():
            if fns is None:
                continue
            fns = list(fns) if isinstance(fns, list | tuple) else [fns]
            for fn in fns:
                if not callable(fn):
                    raise ConfigError(
                        f"`{event}` must be a function or a list of them, got {fn!r}."
                    )
            self.functions[event] = fns

    def call(self, event: str, **kwargs: Any) -> None:
        """Run `event` on every callback instance, then every function given for it."""
        for instance in self.instances:
            getattr(instance, event)(**kwargs)
        for fn in self.functions.get(event, ()):
            fn(**kwargs)


def check_callback_classes(classes: list) -> None:
    """Each must subclass RLlibCallback and override no event scalerl does not call yet."""
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, RLlibCallback)):
            raise ConfigError(
                f"`callbacks_class` must be an RLlibCallback subclass (or a list of them), got "
                f"{cls!r}. `from scalerl.callbacks import RLlibCallback`."
            )
        missing = [e for e in NOT_YET_EVENTS if callable(getattr(cls, e, None))]
        if missing:
            raise ConfigError(
                f"`{cls.__name__}` defines {missing}: scalerl does not call these EnvRunner "
                f"events yet (only {list(DRIVER_EVENTS)}), and would never call them. "
                "Move the logic to `on_train_result` / `on_evaluate_end`, or remove them."
            )
