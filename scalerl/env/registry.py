"""Environment lookup: registered creator functions, Gymnasium ids, or env classes."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from scalerl.utils.errors import ConfigError, did_you_mean
from scalerl.utils.trust import register_trusted

_ENV_CREATORS: dict[str, Callable[[EnvContext], gym.Env]] = {}


class EnvContext(dict):
    """The `env_config` dict, plus where the env lives (as RLlib passes it to creators)."""

    def __init__(
        self,
        env_config: dict | None,
        worker_index: int = 0,
        vector_index: int = 0,
        num_workers: int = 0,
    ):
        super().__init__(env_config or {})
        self.worker_index = worker_index
        self.vector_index = vector_index
        self.num_workers = num_workers


def register_env(name: str, env_creator: Callable[[EnvContext], gym.Env]) -> None:
    """Register `env_creator(env_config) -> env` under `name`, for `.environment(name)`.

    With Ray Tune in use, the name is registered with Tune too, so that Tune trials (other
    processes) find it (`share_envs_with_tune`)."""
    if not callable(env_creator):
        raise TypeError(f"register_env({name!r}, ...): the creator must be callable.")
    _ENV_CREATORS[name] = env_creator
    register_trusted(env_creator)
    if "ray.tune" in sys.modules:
        _share_with_tune(name, env_creator)


def share_envs_with_tune() -> None:
    """Register every `register_env` name with Ray Tune as well (`scalerl.tune` calls this
    when Tune is first used): a Tune trial runs in another process, which looks envs up
    in Tune's cluster-wide registry."""
    for name, creator in _ENV_CREATORS.items():
        _share_with_tune(name, creator)


def _share_with_tune(name: str, creator: Callable[[EnvContext], gym.Env]) -> None:
    from ray.tune.registry import register_env as tune_register_env

    try:
        tune_register_env(name, creator)
    except Exception as e:  # cannot be pickled: still fine in this process
        warnings.warn(
            f"The env `{name}` works in this process, but Ray Tune trials will not find it: "
            f"its creator cannot be sent to them ({type(e).__name__}: {e}).",
            RuntimeWarning,
            stacklevel=3,
        )


def is_registered_env(name: str) -> bool:
    """`name` is a `register_env` name (scalerl's or Ray Tune's) or a Gymnasium id known
    to this process (no import)."""
    return name in _ENV_CREATORS or name in gym.registry or _tune_env_creator(name) is not None


def _tune_env_creator(name: str) -> Callable[[EnvContext], gym.Env] | None:
    """The creator registered with `ray.tune.register_env(name, ...)`, if Ray Tune is in
    use in this process (it is never imported for this: that costs a second at start-up).
    What the process registered with Tune may be called, like `register_env`'s."""
    if "ray.tune" not in sys.modules:
        return None
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if not _global_registry.contains(ENV_CREATOR, name):
        return None
    creator = _global_registry.get(ENV_CREATOR, name)
    register_trusted(creator)
    return creator


def env_name(env: Any) -> str:
    """A readable name for `config.env`: the string itself, or the class's or function's name."""
    if isinstance(env, str):
        return env
    return getattr(env, "__name__", repr(env))


def get_env_creator(env: Any) -> Callable[[EnvContext], gym.Env]:
    """Resolve `config.env` to a function `EnvContext -> gymnasium.Env`."""
    if isinstance(env, str):
        if env in _ENV_CREATORS:
            return _ENV_CREATORS[env]
        tune_creator = _tune_env_creator(env)
        if tune_creator is not None:
            return tune_creator
        if ":" not in env and env not in gym.registry:
            valid = list(_ENV_CREATORS) + list(gym.registry)
            raise ConfigError(
                f"Unknown environment `{env}` in `config.environment(env=...)`."
                f"{did_you_mean(env, valid)}"
                " Pass a registered Gymnasium id, an env class, or a name registered with "
                "`scalerl.register_env(name, creator)` (or `ray.tune.register_env`)."
            )
        return _GymMaker(env)
    if isinstance(env, type) and issubclass(env, gym.Env):
        return env
    if callable(env):
        return env
    raise ConfigError(
        f"`config.environment(env=...)` must be a Gymnasium id, a registered name, an env "
        f"class or a creator function; got {env!r}."
    )


class _GymMaker:
    """Picklable creator for a Gymnasium id (lambdas would close over the driver's state)."""

    def __init__(self, env_id: str):
        self.env_id = env_id

    def __call__(self, ctx: EnvContext) -> gym.Env:
        return gym.make(self.env_id, **dict(ctx))
