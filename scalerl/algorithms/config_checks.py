"""The checks of the settings every algorithm shares (`AlgorithmConfig.validate`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scalerl.algorithms.config_rllib_compat import validate_compat
from scalerl.algorithms.fault_tolerance_config import validate_fault_tolerance
from scalerl.algorithms.model_config_checks import validate_model_config
from scalerl.algorithms.multi_agent_config import validate_multi_agent
from scalerl.callbacks.callbacks import ALL_EVENTS, check_callback_classes
from scalerl.connectors.env_to_module.mean_std_filter import (
    check_env_to_module_connector,
    validate_observation_filter,
)
from scalerl.env.checks import ON_NONFINITE
from scalerl.utils.errors import ConfigError
from scalerl.utils.run_logger import check_logger_config

# Settings that may hold inf legitimately (env data, space bounds) or are not numbers.
NON_FINITE_ALLOWED = {
    "env",
    "env_config",
    "observation_space",
    "action_space",
    "rl_module_spec",
    "policies",
    "policy_mapping_fn",
    "env_to_module_connector",
    "logger_config",
    "custom_evaluation_function",
}


def validate_common(config: Any) -> None:
    """Raise ConfigError naming the first invalid setting and what would be valid."""
    if config.framework_str != "torch":
        raise ConfigError(
            f"`config.framework({config.framework_str!r})` is not supported: scalerl runs on "
            "PyTorch only; use `.framework('torch')` (the default)."
        )
    if config.env is None:
        raise ConfigError(
            "No environment set: call `config.environment(env=...)` with a "
            "Gymnasium id, a registered name, an env class or a creator."
        )
    if not isinstance(config.env_config, dict):
        raise ConfigError(f"`env_config` must be a dict, got {config.env_config!r}.")
    config._check_int("num_env_runners", 0)
    config._check_int("num_envs_per_env_runner", 1)
    config._check_int("max_requests_in_flight_per_env_runner", 1)
    config._check_int("num_learners", 0)
    config._check_int("train_batch_size", 1)
    config._check_int("minibatch_size", 1)
    config._check_int("num_epochs", 1)
    config._check_int("metrics_num_episodes_for_smoothing", 1)
    check_logger_config(config.logger_config)
    if config.evaluation_duration != "auto":
        config._check_int("evaluation_duration", 1, extra="or 'auto'")
    config._check_int("evaluation_num_env_runners", 0)
    if config.train_batch_size_per_learner is not None:
        config._check_int("train_batch_size_per_learner", 1)
    if config.evaluation_interval is not None:
        config._check_int("evaluation_interval", 0)
    if config.rollout_fragment_length != "auto":
        config._check_int("rollout_fragment_length", 1, extra="or 'auto'")
    if config.seed is not None:
        config._check_int("seed", 0)
    if not (isinstance(config.gamma, int | float) and 0.0 <= config.gamma <= 1.0):
        raise ConfigError(f"`gamma` must be in [0, 1], got {config.gamma!r}.")
    config._validate_lr()
    check_finite_settings(config)
    for name in config.bool_settings:
        value = getattr(config, name)
        if not isinstance(value, bool | np.bool_):
            raise ConfigError(f"`{name}` must be True or False, got {value!r}.")
    config._check_choice("on_nonfinite", ON_NONFINITE)
    if config.on_nonfinite == "drop" and not config.check_env_steps:
        raise ConfigError(
            "`on_nonfinite='drop'` needs the per-step checks: set `check_env_steps=True`."
        )
    if config.minibatch_size > config.total_train_batch_size:
        raise ConfigError(
            f"`minibatch_size` ({config.minibatch_size}) must not exceed the train batch size "
            f"({config.total_train_batch_size}); lower `minibatch_size` or raise "
            "`train_batch_size`."
        )
    config._check_choice("grad_clip_by", ("global_norm", "norm", "value"))
    config._check_choice("evaluation_duration_unit", ("episodes", "timesteps"))
    config._check_choice("batch_mode", ("truncate_episodes",))
    if config.grad_clip is not None and not (
        isinstance(config.grad_clip, int | float) and config.grad_clip > 0
    ):
        raise ConfigError(
            f"`grad_clip` must be a positive number or None, got {config.grad_clip!r}."
        )
    if config.clip_rewards not in (None, True, False) and not (
        isinstance(config.clip_rewards, int | float) and config.clip_rewards > 0
    ):
        raise ConfigError(
            f"`clip_rewards` must be None, a bool or a positive number, got "
            f"{config.clip_rewards!r}."
        )
    if not (
        isinstance(config.num_cpus_per_env_runner, int | float)
        and config.num_cpus_per_env_runner >= 0
    ):
        raise ConfigError(
            "`num_cpus_per_env_runner` must be a number >= 0 (fractions such "
            f"as 0.5 pack runners), got {config.num_cpus_per_env_runner!r}."
        )
    config.check_number("num_gpus_per_learner")
    if config.num_gpus_per_learner < 0:
        raise ConfigError("`num_gpus_per_learner` must be >= 0.")
    validate_observation_filter(config.observation_filter)
    validate_fault_tolerance(config)
    if config.env_to_module_connector is not None:
        check_env_to_module_connector(config.env_to_module_connector)
        if config.observation_filter != "NoFilter":
            raise ConfigError(
                f"Both `observation_filter={config.observation_filter!r}` and "
                "`env_to_module_connector` are set; set one of them."
            )
    if config.evaluation_config is not None:
        if not isinstance(config.evaluation_config, dict):
            raise ConfigError("`evaluation_config` must be a dict of overrides.")
        config.copy().update_from_dict(config.evaluation_config)
    if config.rl_module_spec is None:
        validate_model_config(config.model_config)
    validate_multi_agent(config)
    validate_callbacks(config)
    validate_compat(config)


def validate_callbacks(config: Any) -> None:
    """Callback classes subclass RLlibCallback; event settings hold functions."""
    classes = config.callbacks_class
    if classes is not None:
        check_callback_classes(list(classes) if isinstance(classes, list | tuple) else [classes])
    for event in ALL_EVENTS:
        fns = getattr(config, f"callbacks_{event}")
        if fns is None:
            continue
        for fn in fns if isinstance(fns, list | tuple) else [fns]:
            if not callable(fn):
                raise ConfigError(f"`{event}` must be a function or a list of them, got {fn!r}.")


def check_finite_settings(config: Any) -> None:
    """No NaN or inf in any numeric setting (nested in lists and dicts too), except in
    `env_config`, the spaces and the multi-agent specs, which belong to the env."""
    for key in config._all_keys():
        if key in NON_FINITE_ALLOWED:
            continue
        path = _nonfinite_path(config._setting(key), key)
        if path is not None:
            raise ConfigError(
                f"`{path[0]}` is {path[1]!r}: settings must be finite numbers (use None "
                "where a setting can be turned off)."
            )


def _nonfinite_path(value: Any, path: str) -> tuple[str, float] | None:
    """(setting path, value) of the first NaN/inf float in a setting, or None."""
    if isinstance(value, float | np.floating):
        return None if math.isfinite(value) else (path, float(value))
    if isinstance(value, dict):
        for k, v in value.items():
            found = _nonfinite_path(v, f"{path}[{k!r}]")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _nonfinite_path(v, f"{path}[{i}]")
            if found:
                return found
    return None
