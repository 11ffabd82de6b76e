"""Callbacks: user code called at the algorithm's events (RLlib's `RLlibCallback`).

Subclass `RLlibCallback` (alias `DefaultCallbacks`) and pass the class, or a list of classes,
to `config.callbacks(callbacks_class=...)`, or pass functions per event
(`config.callbacks(on_episode_end=fn)`). Each is called with RLlib's keyword arguments.

Driver events (`DRIVER_EVENTS`), called by the Algorithm: `on_algorithm_init`,
`on_train_result`, `on_evaluate_start`, `on_evaluate_end`, `on_checkpoint_loaded`,
`on_env_runners_recreated`.

EnvRunner events (`ENV_RUNNER_EVENTS`), called by every EnvRunner (local, Ray actors,
training and evaluation) with `env_runner`, `metrics_logger` (the runner's own
`MetricsLogger`; what is logged there is merged into `result["env_runners"]`, or
`result["evaluation"]["env_runners"]`), and for the episode events `episode` (see
`scalerl.callbacks.episode`), `env` (the runner's envs: `env.envs[env_index]` is the one
the episode runs in), `env_index` and `rl_module`: `on_environment_created`,
`on_episode_created`, `on_episode_start`, `on_episode_step`, `on_episode_end`,
`on_sample_end`. Each runner makes its own instance of each callback class (as RLlib
does); with Ray runners the classes and functions travel to the actors with the config,
the way env creators do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scalerl.utils.errors import ConfigError

#: The events the Algorithm calls, in the driver.
DRIVER_EVENTS = (
    "on_algorithm_init",
    "on_train_result",
    "on_evaluate_start",
    "on_evaluate_end",
    "on_checkpoint_loaded",
    "on_env_runners_recreated",
)
#: The events every EnvRunner calls.
ENV_RUNNER_EVENTS = (
    "on_environment_created",
    "on_episode_created",
    "on_episode_start",
    "on_episode_step",
    "on_episode_end",
    "on_sample_end",
)
ALL_EVENTS = DRIVER_EVENTS + ENV_RUNNER_EVENTS


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

    def on_env_runners_recreated(
        self,
        *,
        algorithm: Any,
        env_runner_group: Any,
        env_runner_indices: list[int],
        is_evaluation: bool,
        **kwargs,
    ) -> None:
        """After the fault-tolerance path replaced failed Ray EnvRunners (their worker
        indices), in the training or the evaluation group."""

    # -- EnvRunner events -----------------------------------------------------------------
    def on_environment_created(
        self, *, env_runner: Any, metrics_logger: Any = None, env: Any, env_context: Any, **kwargs
    ) -> None:
        """Once per EnvRunner, after its envs are made (`env.envs`: the sub-envs;
        `env_context`: the first one's `EnvContext`)."""

    def on_episode_created(
        self,
        *,
        episode: Any,
        env_runner: Any = None,
        metrics_logger: Any = None,
        env: Any = None,
        env_index: int,
        rl_module: Any = None,
        **kwargs,
    ) -> None:
        """A new episode object, before its env is reset (it holds no data yet)."""

    def on_episode_start(
        self,
        *,
        episode: Any,
        env_runner: Any = None,
        metrics_logger: Any = None,
        env: Any = None,
        env_index: int,
        rl_module: Any = None,
        **kwargs,
    ) -> None:
        """After the reset: the episode holds the first observation and info."""

    def on_episode_step(
        self,
        *,
        episode: Any,
        env_runner: Any = None,
        metrics_logger: Any = None,
        env: Any = None,
        env_index: int,
        rl_module: Any = None,
        **kwargs,
    ) -> None:
        """After each env step of the episode (the step is in the episode already; the
        last step is followed by `on_episode_end`)."""

    def on_episode_end(
        self,
        *,
        episode: Any,
        env_runner: Any = None,
        metrics_logger: Any = None,
        env: Any = None,
        env_index: int,
        rl_module: Any = None,
        **kwargs,
    ) -> None:
        """When the episode terminated or was truncated, with all its data. Episodes cut
        short by scalerl (an env recreated by `restart_failed_sub_environments`, a
        dropped non-finite step, the next evaluation's fresh start) end without it."""

    def on_sample_end(
        self, *, env_runner: Any = None, metrics_logger: Any = None, samples: list, **kwargs
    ) -> None:
        """At the end of each `sample()` / `sample_episodes()` of an EnvRunner, with the
        episodes it stepped (`samples`: the ones that ended, then the ones still running)."""


DefaultCallbacks = RLlibCallback  # RLlib's older name


class Callbacks:
    """The callback instances and per-event functions of one algorithm (or one EnvRunner),
    called together.

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

    def handles(self, event: str) -> bool:
        """True if a function is given for `event` or a class overrides it."""
        if self.functions.get(event):
            return True
        base = getattr(RLlibCallback, event)
        return any(getattr(type(i), event, base) is not base for i in self.instances)

    def call(self, event: str, **kwargs: Any) -> None:
        """Run `event` on every callback instance, then every function given for it."""
        for instance in self.instances:
            getattr(instance, event)(**kwargs)
        for fn in self.functions.get(event, ()):
            fn(**kwargs)


def env_runner_classes(classes: Any) -> list | None:
    """The callback classes (`callbacks_class`) that override an EnvRunner event: the
    ones an EnvRunner needs (None if none does)."""
    classes = [] if classes is None else classes
    classes = list(classes) if isinstance(classes, list | tuple) else [classes]
    keep = [
        c
        for c in classes
        if any(getattr(c, e, None) is not getattr(RLlibCallback, e) for e in ENV_RUNNER_EVENTS)
    ]
    return keep or None


def env_runner_callbacks(config: Any) -> Callbacks | None:
    """An EnvRunner's callbacks (its own instances), or None when no EnvRunner event is
    configured: then the runner builds no episode objects at all."""
    functions = {e: getattr(config, f"callbacks_{e}", None) for e in ENV_RUNNER_EVENTS}
    if config.callbacks_class is None and not any(functions.values()):
        return None
    callbacks = Callbacks(config.callbacks_class, functions)
    return callbacks if any(callbacks.handles(e) for e in ENV_RUNNER_EVENTS) else None


def check_callback_classes(classes: list) -> None:
    """Each must subclass RLlibCallback."""
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, RLlibCallback)):
            raise ConfigError(
                f"`callbacks_class` must be an RLlibCallback subclass (or a list of them), got "
                f"{cls!r}. `from scalerl.callbacks import RLlibCallback`."
            )
