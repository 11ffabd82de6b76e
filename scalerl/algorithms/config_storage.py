"""How an `AlgorithmConfig` is stored as JSON (`to_dict`) and read back (`from_dict`).

Classes and functions are stored by qualified name and resolve, when read back, only
against what this process trusts (`scalerl.utils.trust`); spaces become JSON dicts; a
user's `env_to_module_connector` is stored as the `observation_filter` it amounts to.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import gymnasium as gym

from scalerl.algorithms.multi_agent_config import (
    MULTI_AGENT_SETTINGS,
    decode_multi_agent,
    encode_multi_agent,
)
from scalerl.callbacks.callbacks import ALL_EVENTS, RLlibCallback
from scalerl.connectors.env_to_module.mean_std_filter import resolve_env_to_module_connector
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils.errors import CheckpointError, ConfigError
from scalerl.utils.spaces import space_from_dict, space_to_dict
from scalerl.utils.trust import StoredName, register_trusted, resolve, stored_name

CALLBACK_EVENTS = ALL_EVENTS


def encode_setting(config: Any, key: str, value: Any, mapping_table: dict | None) -> Any:
    """One setting of `config` as JSON-able data (see `AlgorithmConfig.to_dict`); a Ray
    Tune search space in its place stays as it is, for Tune to resolve per trial."""
    if is_search_space(value):
        return copy.deepcopy(value)
    if key in MULTI_AGENT_SETTINGS:
        value = encode_multi_agent(key, value, mapping_table)
    elif key == "env" and not isinstance(value, str) and value is not None:
        if getattr(value, "multi_agent_of", None):  # make_multi_agent("CartPole-v1")
            value = {"__make_multi_agent__": value.multi_agent_of}
        else:
            register_trusted(value)  # given in this process: it may load it back
            value = {"__callable__": stored_name(value)}
    elif key == "env_to_module_connector":
        value = None  # stored as `observation_filter`
    elif key == "logger_config" and isinstance(value, dict):  # a `logdir` may be a Path
        value = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in value.items()}
    elif key == "observation_filter" and config.env_to_module_connector is not None:
        value = stored_observation_filter(config)
    elif key in ("callbacks_class", "custom_evaluation_function") or key in CALLBACK_EVENTS:
        value = _encode_callables(value)
    elif isinstance(value, RLModuleSpec):
        cls = value.module_class
        if cls is not None:
            register_trusted(cls)  # given in this process: it may load it back
        value = {
            "module_class": None if cls is None else stored_name(cls),
            "model_config": value.model_config,
        }
    return encode_spaces(copy.deepcopy(value))


def is_search_space(value: Any) -> bool:
    """Whether `value` is a Ray Tune search space (`tune.grid_search([...])`, or a sampler
    such as `tune.uniform`), recognized without importing Ray Tune."""
    if isinstance(value, dict):
        return set(value) == {"grid_search"}
    return type(value).__module__.startswith("ray.tune.search")


def decode_setting(key: str, value: Any, trusted: tuple) -> Any:
    """The inverse of `encode_setting`: names resolve only against what this process
    trusts, plus `trusted`; nothing is imported for them."""
    value = decode_spaces(value)
    if key in MULTI_AGENT_SETTINGS:
        return decode_multi_agent(key, value, trusted)
    if key == "env" and isinstance(value, dict) and "__callable__" in value:
        return resolve_env(value["__callable__"], trusted)
    if key == "env" and isinstance(value, dict) and "__make_multi_agent__" in value:
        from scalerl.env.multi_agent_env import make_multi_agent

        name = value["__make_multi_agent__"]
        if not isinstance(name, str):
            raise CheckpointError(f"`env` {value!r}: a multi-agent env must name its env.")
        check_stored_env_id(name)
        return make_multi_agent(name)
    if key in ("callbacks_class", "custom_evaluation_function") or key in CALLBACK_EVENTS:
        base = RLlibCallback if key == "callbacks_class" else None
        what = "a callbacks class" if base else f"the `{key}` function"
        return _decode_callables(value, what, trusted, base)
    if key == "rl_module_spec" and isinstance(value, dict):
        name = value.get("module_class")
        return RLModuleSpec(
            module_class=None
            if name is None
            else resolve(name, "the RLModule class", trusted, RLModule),
            model_config=value.get("model_config"),
        )
    return value


def _encode_callables(value: Any) -> Any:
    """A class or function, or a list of them, by qualified name (trusted again when this
    process loads it back)."""
    if value is None:
        return None
    items = list(value) if isinstance(value, list | tuple) else [value]
    register_trusted(*items)
    names = [{"__callable__": stored_name(v)} for v in items]
    return names if isinstance(value, list | tuple) else names[0]


def _decode_callables(value: Any, what: str, trusted: tuple, base: type | None) -> Any:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        name = item.get("__callable__") if isinstance(item, dict) else None
        # A lambda's name cannot be looked up; a StoredName holds the lambda itself.
        if isinstance(name, str) and "<" in name and not isinstance(name, StoredName):
            raise ConfigError(
                f"The checkpoint's {what} `{name}` was a lambda or local function, which "
                "cannot be restored by name: pass it again in `config_overrides` (the "
                "setting's name, e.g. {'on_train_result': fn}), or None to drop it."
            )
        own = (base,) if base is not None else None
        out.append(resolve(name, what, trusted, base, own))
    return out if isinstance(value, list) else out[0]


def stored_observation_filter(config: Any) -> dict[str, Any]:
    """A user's `env_to_module_connector`, as the JSON-able `observation_filter` form."""
    spaces = (config.observation_space, config.action_space)
    try:
        return resolve_env_to_module_connector(config.env_to_module_connector, None, spaces)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(
            "Cannot store `env_to_module_connector` in a dict: calling it without an env "
            f"failed ({type(e).__name__}: {e}). Use `algo.config.to_dict()` after "
            "`build_algo()` (the algorithm resolves it with its env), or set "
            "`observation_filter='MeanStdFilter'` instead."
        ) from e


def resolve_env(name: str, trusted: tuple = ()) -> Any:
    """The env class or creator function that `to_dict()` stored by name (only what this
    process trusts: see `scalerl.utils.trust`; a `StoredName`'s own object)."""
    if ("<lambda>" in name or "<locals>" in name) and not isinstance(name, StoredName):
        raise ConfigError(
            f"The env `{name}` was a lambda or local function, which cannot be restored by "
            "name. Register it with `scalerl.register_env('my-env', creator)` and use "
            "`.environment('my-env')` instead."
        )
    from scalerl.env.multi_agent_env import MultiAgentEnv

    return resolve(name, "the env class or creator", trusted, own=(gym.Env, MultiAgentEnv))


def check_stored_env_id(env: Any) -> None:
    """A stored env name must be registered already: Gymnasium's `module:EnvId` form would
    import `module`, and loading a checkpoint imports nothing."""
    from scalerl.env.registry import is_registered_env

    if isinstance(env, str) and ":" in env and not is_registered_env(env):
        module = env.partition(":")[0]
        raise CheckpointError(
            f"The checkpoint's env `{env}` would import the module `{module}`; loading a "
            f"checkpoint imports nothing. Import `{module}` yourself first (it registers the "
            "env id), or pass the env in `config_overrides={'env': ...}`."
        )


def encode_spaces(value: Any) -> Any:
    """Gymnasium spaces anywhere in `value` (e.g. inside `env_config`) -> JSON-able dicts."""
    if isinstance(value, gym.Space):
        return {"__space__": space_to_dict(value)}
    if isinstance(value, dict):
        return {k: encode_spaces(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(encode_spaces(v) for v in value)
    return value


def decode_spaces(value: Any) -> Any:
    """The inverse of `encode_spaces`."""
    if isinstance(value, dict):
        if set(value) == {"__space__"}:
            return space_from_dict(value["__space__"])
        return {k: decode_spaces(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(decode_spaces(v) for v in value)
    return value
