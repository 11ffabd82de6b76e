"""RLlib's builder methods that matter little on one machine: `resources`, `checkpointing`,
`experimental` and `offline_data`, and the checks of their settings.

`AlgorithmConfig` takes these functions as its methods (they are builder methods like the
others: typed keyword arguments, documented defaults, unknown names suggest the nearest).
What each setting does here:

- Settings with a meaning are applied: `_validate_config`, and the driver's resources and
  placement strategy of a Ray Tune trial (`num_cpus_for_main_process`,
  `custom_resources_for_main_process`, `placement_strategy`; see `tune/trainable.py`).
- Settings without a meaning on one machine are accepted and change nothing only when
  that is harmless: `_use_msgpack_checkpoints` (scalerl's checkpoints are never pickles
  anyway), `num_gpus=0`.
- Features scalerl does not have raise a ConfigError naming the feature: `num_gpus > 0`
  (use `num_gpus_per_learner`), `_fake_gpus`, `export_native_model_files`,
  `checkpoint_trainable_policies_only`, torch grad scalers and lr scheduler classes, and
  every offline-data setting (offline RL is to come).
"""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.not_provided import NotProvided
from scalerl.utils.errors import ConfigError

# Setting -> default, in the order of the builder methods' arguments (RLlib's defaults).
COMPAT_DEFAULTS: dict[str, Any] = {
    # resources
    "num_cpus_for_main_process": 1,
    "custom_resources_for_main_process": {},
    "num_gpus": 0,
    "_fake_gpus": False,
    "placement_strategy": "PACK",
    # checkpointing
    "export_native_model_files": False,
    "checkpoint_trainable_policies_only": False,
    # experimental
    "_validate_config": True,
    "_use_msgpack_checkpoints": False,
    "_torch_grad_scaler_class": None,
    "_torch_lr_scheduler_classes": None,
    # offline_data
    "input_": "sampler",
    "output": None,
}
# RLlib's old-API-stack switches in `experimental()`: accepted, stored nowhere.
COMPAT_IGNORED = {
    "_tf_policy_handles_more_than_one_loss",
    "_disable_preprocessor_api",
    "_disable_action_flattening",
    "_disable_initialize_loss_from_dummy_batch",
}
# RLlib's other `offline_data()` arguments: each one is offline RL, not supported yet.
OFFLINE_SETTINGS = (
    "offline_data_class input_read_method input_read_method_kwargs input_read_schema "
    "input_read_episodes input_read_sample_batches input_read_batch_size input_filesystem "
    "input_filesystem_kwargs input_compress_columns materialize_data materialize_mapped_data "
    "map_batches_kwargs iter_batches_kwargs ignore_final_observation prelearner_class "
    "prelearner_buffer_class prelearner_buffer_kwargs prelearner_module_synch_period "
    "prelearner_use_recorded_module_states dataset_num_iters_per_learner input_config "
    "actions_in_input_normalized postprocess_inputs shuffle_buffer_size output_config "
    "output_compress_columns output_max_file_size output_max_rows_per_file "
    "output_write_remaining_data output_write_method output_write_method_kwargs "
    "output_filesystem output_filesystem_kwargs output_write_episodes offline_sampling"
).split()
PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def _not_supported(feature: str, setting: str, hint: str = "") -> ConfigError:
    return ConfigError(f"scalerl does not support {feature} yet (`{setting}`).{hint}")


def resources(
    self: Any,
    *,
    num_cpus_for_main_process: int = NotProvided,
    custom_resources_for_main_process: dict = NotProvided,
    num_gpus: float = NotProvided,
    _fake_gpus: bool = NotProvided,
    placement_strategy: str = NotProvided,
    **unknown: Any,
) -> Any:
    """Set the resources of the driver process (RLlib's `resources()`).

    Args:
        num_cpus_for_main_process: CPUs Ray Tune reserves for the driver of a trial (an
            integer >= 0). Default: `1`.
        custom_resources_for_main_process: Custom Ray resources Ray Tune reserves for the
            driver of a trial (a dict). Default: `{}`.
        num_gpus: RLlib's old GPU setting: 0 only; GPUs are asked for per Learner with
            `learners(num_gpus_per_learner=...)`. Default: `0`.
        _fake_gpus: RLlib's simulated GPUs: False only (not supported). Default: `False`.
        placement_strategy: The placement-group strategy of a Ray Tune trial's bundles
            ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"; matters on a cluster).
            Default: `'PACK'`.
        **unknown: Not a setting: any other name raises a ConfigError that suggests the
            nearest valid one.

    Returns:
        This config, for chaining.
    """
    return self._set("resources", locals())


def checkpointing(
    self: Any,
    *,
    export_native_model_files: bool = NotProvided,
    checkpoint_trainable_policies_only: bool = NotProvided,
    **unknown: Any,
) -> Any:
    """Set what checkpoints hold (RLlib's `checkpointing()`).

    Args:
        export_native_model_files: Also write pickled torch model files: False only
            (scalerl's checkpoints hold JSON and safetensors, never pickles). Default:
            `False`.
        checkpoint_trainable_policies_only: Save only the modules in `policies_to_train`:
            False only (not supported yet; every module is saved). Default: `False`.
        **unknown: Not a setting: any other name raises a ConfigError that suggests the
            nearest valid one.

    Returns:
        This config, for chaining.
    """
    return self._set("checkpointing", locals())


def experimental(
    self: Any,
    *,
    _validate_config: bool = NotProvided,
    _use_msgpack_checkpoints: bool = NotProvided,
    _torch_grad_scaler_class: Any = NotProvided,
    _torch_lr_scheduler_classes: Any = NotProvided,
    _tf_policy_handles_more_than_one_loss: bool = NotProvided,
    _disable_preprocessor_api: bool = NotProvided,
    _disable_action_flattening: bool = NotProvided,
    _disable_initialize_loss_from_dummy_batch: bool = NotProvided,
    **unknown: Any,
) -> Any:
    """Set RLlib's experimental switches (RLlib's `experimental()`).

    Args:
        _validate_config: Check the settings at `build_algo()` (True or False; False
            skips `validate()`, at your own risk). Default: `True`.
        _use_msgpack_checkpoints: RLlib's non-pickle checkpoints; accepted either way:
            scalerl's checkpoints never hold pickles. Default: `False`.
        _torch_grad_scaler_class: A torch grad scaler class: None only (mixed precision
            is not supported yet). Default: `None`.
        _torch_lr_scheduler_classes: torch lr scheduler classes: None only (not supported
            yet; give `lr` as a schedule [[timestep, value], ...]). Default: `None`.
        _tf_policy_handles_more_than_one_loss: Old API stack; accepted and ignored.
            Default: not stored.
        _disable_preprocessor_api: Old API stack; accepted and ignored. Default: not
            stored.
        _disable_action_flattening: Old API stack; accepted and ignored. Default: not
            stored.
        _disable_initialize_loss_from_dummy_batch: Old API stack; accepted and ignored.
            Default: not stored.
        **unknown: Not a setting: any other name raises a ConfigError that suggests the
            nearest valid one.

    Returns:
        This config, for chaining.
    """
    return self._set("experimental", locals())


def offline_data(
    self: Any,
    *,
    input_: str = NotProvided,
    output: str | None = NotProvided,
    **unknown: Any,
) -> Any:
    """Set where experience comes from and goes to (RLlib's `offline_data()`).

    Offline RL is not supported yet: only the defaults are valid, and RLlib's other
    offline settings (`input_read_method`, `input_config`, ...) raise a ConfigError
    naming the feature.

    Args:
        input_: "sampler" only: experience comes from the EnvRunners (reading recorded
            experience is not supported yet). Default: `'sampler'`.
        output: None only (writing experience to files is not supported yet). Default:
            `None`.
        **unknown: Not a setting: any other name raises a ConfigError that suggests the
            nearest valid one.

    Returns:
        This config, for chaining.
    """
    offline = [k for k in unknown if k in OFFLINE_SETTINGS]
    if offline:
        raise _not_supported("offline RL", f"config.offline_data({offline[0]}=...)")
    return self._set("offline_data", locals())


def model_config_alias(model_config: Any, model_config_dict: Any) -> Any:
    """`rl_module(model_config_dict=...)`, RLlib's older name of `model_config`."""
    if model_config is not NotProvided:
        raise ConfigError(
            "`config.rl_module()` got both `model_config` and `model_config_dict` (RLlib's "
            "older name of the same setting); give one."
        )
    return model_config_dict


def absorb_multi_rl_module_spec(config: Any, spec: Any) -> Any:
    """`rl_module(rl_module_spec=MultiRLModuleSpec(...))`: its per-module specs go into
    `config.policies` ({module_id: spec}; ids not listed yet are added). Returns the
    single-module spec to store as `rl_module_spec`: the only spec when it is the default
    module of a single-agent run, else None."""
    from scalerl.algorithms.multi_agent_config import normalize_policies
    from scalerl.core import DEFAULT_MODULE_ID

    specs = dict(spec.rl_module_specs)
    policies = normalize_policies(config.policies)
    if not policies and list(specs) == [DEFAULT_MODULE_ID]:
        return specs[DEFAULT_MODULE_ID]
    config.policies = {**policies, **specs}
    return None


def keep_policy_specs(old: Any, new: Any) -> Any:
    """`multi_agent(policies={"p0", "p1"})` after `rl_module(rl_module_spec=
    MultiRLModuleSpec(...))`: ids given without a spec keep the spec set before."""
    if not isinstance(new, set | list | tuple) or not isinstance(old, dict):
        return new
    if not any(old.get(mid) is not None for mid in new if isinstance(mid, str)):
        return new
    return {mid: old.get(mid) if isinstance(mid, str) else None for mid in new}


def validate_compat(config: Any) -> None:
    """ConfigError for a setting of these builder methods that asks for a feature scalerl
    does not have, or that has an invalid value."""
    n = config.num_cpus_for_main_process
    if isinstance(n, bool) or not isinstance(n, int | float) or n < 0:
        raise ConfigError(f"`num_cpus_for_main_process` must be a number >= 0, got {n!r}.")
    if not isinstance(config.custom_resources_for_main_process, dict):
        raise ConfigError("`custom_resources_for_main_process` must be a dict.")
    if config.num_gpus != 0:
        raise ConfigError(
            f"`resources(num_gpus={config.num_gpus!r})` is RLlib's old GPU setting; ask for "
            "GPUs per Learner with `learners(num_gpus_per_learner=...)`."
        )
    config._check_choice("placement_strategy", PLACEMENT_STRATEGIES)
    unsupported = {
        "_fake_gpus": "simulated GPUs",
        "export_native_model_files": "native (pickled) model files in checkpoints",
        "checkpoint_trainable_policies_only": "checkpoints of the trainable modules only",
        "_torch_grad_scaler_class": "torch grad scalers (mixed precision)",
        "_torch_lr_scheduler_classes": "torch lr scheduler classes (give `lr` a schedule)",
    }
    for name, feature in unsupported.items():
        if getattr(config, name) not in (None, False):
            raise _not_supported(feature, f"{name}={getattr(config, name)!r}")
    if config.evaluation_duration == "auto" and not config.evaluation_parallel_to_training:
        raise ConfigError(
            "`evaluation_duration='auto'` needs `evaluation_parallel_to_training=True` (as in "
            "RLlib); otherwise give a number of episodes or timesteps."
        )
    fn = config.custom_evaluation_function
    if fn is not None and not callable(fn):
        raise ConfigError(
            "`custom_evaluation_function` must be a function `fn(algorithm, "
            f"eval_env_runner_group) -> (results, env_steps, agent_steps)`, got {fn!r}."
        )
    t = config.min_time_s_per_iteration
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t < 0):
        raise ConfigError(f"`min_time_s_per_iteration` must be None or a number >= 0, got {t!r}.")
    if config.input_ != "sampler":
        raise _not_supported(
            "offline RL (reading recorded experience)", f"offline_data(input_={config.input_!r})"
        )
    if config.output is not None:
        raise _not_supported(
            "recording experience to files", f"offline_data(output={config.output!r})"
        )
