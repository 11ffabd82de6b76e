"""Checks of `model_config` for the default modules: unknown keys (with the nearest valid
name), layer sizes, activations, conv filters and memory sizes."""

from __future__ import annotations

import dataclasses
from typing import Any

from scalerl.core.models.encoders import ACTIVATIONS
from scalerl.core.models.initializers import check_initializers, reject_unsupported
from scalerl.core.rl_module import DefaultModelConfig
from scalerl.core.rl_module.default_model_config import NOT_SUPPORTED_YET
from scalerl.utils.errors import ConfigError, did_you_mean, unknown_keys_error

MODEL_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(DefaultModelConfig))
MODEL_DEFAULTS = dataclasses.asdict(DefaultModelConfig())
MEMORY_SIZE_KEYS = (
    "lstm_cell_size",
    "max_seq_len",
    "attention_num_transformer_units",
    "attention_dim",
    "attention_num_heads",
    "attention_head_dim",
    "attention_position_wise_mlp_dim",
    "attention_memory_inference",
    "attention_memory_training",
)


def validate_model_config(mc: Any) -> None:
    """Raise a ConfigError naming the first invalid `model_config` entry."""
    if not isinstance(mc, dict):
        raise ConfigError(f"`model_config` must be a dict, got {mc!r}.")
    unknown = [k for k in mc if k not in MODEL_CONFIG_KEYS]
    if unknown:
        raise unknown_keys_error("`config.rl_module(model_config=...)`", unknown, MODEL_CONFIG_KEYS)
    reject_unsupported(mc, MODEL_DEFAULTS, NOT_SUPPORTED_YET, "scalerl")
    for key in ("fcnet_hiddens", "head_fcnet_hiddens"):
        hiddens = mc.get(key, [64])
        if not (
            isinstance(hiddens, list | tuple)
            and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hiddens)
        ):
            raise ConfigError(f"`{key}` must be a list of positive ints, got {hiddens!r}.")
    check_initializers(mc)
    clip = mc.get("log_std_clip_param", 20.0)
    if isinstance(clip, bool) or not isinstance(clip, int | float) or not clip > 0:
        raise ConfigError(f"`log_std_clip_param` must be a number > 0, got {clip!r}.")
    for key, default in (
        ("fcnet_activation", "tanh"),
        ("conv_activation", "relu"),
        ("head_fcnet_activation", "relu"),
    ):
        act = mc.get(key, default)
        if act not in ACTIVATIONS:
            raise ConfigError(
                f"`{key}` {act!r} is unknown.{did_you_mean(str(act), ACTIVATIONS)}"
                f" Valid: {', '.join(ACTIVATIONS)}."
            )
    filters = mc.get("conv_filters")
    if filters is not None and not (
        isinstance(filters, list | tuple)
        and all(isinstance(f, list | tuple) and len(f) == 3 for f in filters)
    ):
        raise ConfigError(
            "`conv_filters` must be a list of [out_channels, kernel, stride] entries, e.g. "
            f"[[16, 4, 2], [32, 4, 2]]; got {filters!r}."
        )
    if mc.get("use_lstm") and mc.get("use_attention"):
        raise ConfigError(
            "`use_lstm` and `use_attention` are both set: pick one memory for the module."
        )
    for key in MEMORY_SIZE_KEYS:
        value = mc.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"`model_config[{key!r}]` must be an integer >= 1, got {value!r}.")
