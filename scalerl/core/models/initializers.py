"""Weight initializers named in `model_config` (RLlib's `fcnet_kernel_initializer`, ...),
and the check for model settings a default module does not support yet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from scalerl.utils.errors import ConfigError, did_you_mean

# torch.nn.init functions that take a tensor (and keyword settings) and fill it in place.
INITIALIZERS = (
    "uniform_",
    "normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "trunc_normal_",
    "orthogonal_",
    "sparse_",
)
# (setting, its kwargs setting) per part of a module.
INITIALIZER_SETTINGS = {
    "fcnet": ("fcnet_kernel_initializer", "fcnet_bias_initializer"),
    "conv": ("conv_kernel_initializer", "conv_bias_initializer"),
    "head_fcnet": ("head_fcnet_kernel_initializer", "head_fcnet_bias_initializer"),
}

# Every initializer setting and its kwargs (for modules that support none of them).
INITIALIZER_KEYS = tuple(
    key for pair in INITIALIZER_SETTINGS.values() for s in pair for key in (s, s + "_kwargs")
)


def initializer_name(name: Any, setting: str) -> str:
    """The `torch.nn.init` function for `name` ("xavier_uniform", "xavier_uniform_" or
    RLlib's "XavierUniform"-style CamelCase), or a ConfigError naming the setting."""
    if not isinstance(name, str):
        raise ConfigError(
            f"`{setting}` must name a torch.nn.init function (e.g. 'xavier_uniform'); got "
            f"{name!r}. Functions cannot be stored in a JSON config: give the name."
        )
    key = name if name.endswith("_") else name + "_"
    if key not in INITIALIZERS:  # CamelCase: "XavierUniform" -> "xavier_uniform_"
        key = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_") + "_"
    if key not in INITIALIZERS:
        raise ConfigError(
            f"`{setting}` {name!r} is not a torch.nn.init initializer."
            f"{did_you_mean(name + '_', INITIALIZERS)} Valid: "
            f"{', '.join(i.rstrip('_') for i in INITIALIZERS)}."
        )
    return key


def check_initializers(cfg: dict[str, Any]) -> None:
    """ConfigError for an unknown initializer name or kwargs that are not a dict."""
    for kernel, bias in INITIALIZER_SETTINGS.values():
        for setting in (kernel, bias):
            if cfg.get(setting) is not None:
                initializer_name(cfg[setting], setting)
            kwargs = cfg.get(setting + "_kwargs")
            if kwargs is not None and not isinstance(kwargs, dict):
                raise ConfigError(f"`{setting}_kwargs` must be a dict or None, got {kwargs!r}.")


def init_layers(layers: Iterable[nn.Module], cfg: dict[str, Any], part: str) -> None:
    """Re-initialize the weights and biases of the Linear/Conv layers in `layers` with
    `cfg`'s initializers for `part` ("fcnet", "conv" or "head_fcnet"); unset ones keep
    the module's own initialization."""
    kernel_setting, bias_setting = INITIALIZER_SETTINGS[part]
    fills = []
    for setting, attr in ((kernel_setting, "weight"), (bias_setting, "bias")):
        if cfg.get(setting) is not None:
            fn = getattr(nn.init, initializer_name(cfg[setting], setting))
            fills.append((fn, attr, dict(cfg.get(setting + "_kwargs") or {})))
    if not fills:
        return
    kinds = (nn.Conv1d, nn.Conv2d) if part == "conv" else (nn.Linear,)
    for layer in layers:
        for sub in layer.modules():
            if not isinstance(sub, kinds):
                continue
            for fn, attr, kwargs in fills:
                tensor = getattr(sub, attr)
                if tensor is not None:
                    try:
                        fn(tensor.data, **kwargs)
                    except (TypeError, ValueError) as e:
                        raise ConfigError(
                            f"The {part} initializer {fn.__name__} failed on a {attr} of shape "
                            f"{tuple(tensor.shape)} with kwargs {kwargs}: {e}"
                        ) from None


def reject_unsupported(
    cfg: dict[str, Any], defaults: dict[str, Any], keys: Iterable[str], where: str
) -> None:
    """ConfigError if a setting in `keys` differs from its default: `where` (a module or
    the whole of scalerl) does not support it yet."""
    for key in keys:
        if key in cfg and cfg[key] != defaults[key]:
            raise ConfigError(
                f"`model_config[{key!r}]={cfg[key]!r}`: {where} does not support this setting "
                f"yet (leave it at {defaults[key]!r})."
            )


def init_ensemble(ensemble: nn.Module, cfg: dict[str, Any]) -> None:
    """`init_layers` for an `EnsembleMLP` (SAC's critics): hidden layers get the "fcnet"
    initializers, the output layer the "head_fcnet" ones, each member on its own."""
    last = len(ensemble.names) - 1
    for i, (w_name, b_name) in enumerate(ensemble.names):
        kernel_setting, bias_setting = INITIALIZER_SETTINGS["head_fcnet" if i == last else "fcnet"]
        w, b = ensemble._parameters[w_name], ensemble._parameters[b_name]
        for setting, tensor, transposed in (
            (kernel_setting, w, i < last),  # hidden weights are stored [in, out]
            (bias_setting, b, False),
        ):
            if cfg.get(setting) is None:
                continue
            fn = getattr(nn.init, initializer_name(cfg[setting], setting))
            kwargs = dict(cfg.get(setting + "_kwargs") or {})
            for k in range(tensor.shape[0]):
                member = tensor.data[k]
                tmp = member.t().clone() if transposed else member.clone()
                fn(tmp, **kwargs)
                member.copy_(tmp.t() if transposed else tmp)


def normalize_model_config(model_config: dict[str, Any]) -> dict[str, Any]:
    """`model_config` with `torch.nn.init` functions given as initializers replaced by
    their names (RLlib takes both; scalerl's configs and checkpoints are JSON), an
    activation of None as "linear", and RLlib's internal `uses_new_env_runners` dropped."""
    out = dict(model_config)
    out.pop("uses_new_env_runners", None)  # RLlib's internal flag, always true here
    for pair in INITIALIZER_SETTINGS.values():
        for setting in pair:
            fn = out.get(setting)
            if callable(fn) and getattr(fn, "__module__", "") == "torch.nn.init":
                out[setting] = fn.__name__
    for key in ("fcnet_activation", "head_fcnet_activation", "conv_activation"):
        if key in out and out[key] is None:
            out[key] = "linear"
    return out
