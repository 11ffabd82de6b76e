"""RLlib's older setting names, as its YAML tuned examples use them, translated to today's.

`scalerl train --config FILE.yaml` reads RLlib's tuned-example form; many published files
still use the old API stack's names (`lambda`, `num_workers`, `sgd_minibatch_size`, a
`model` dict, `episode_reward_mean` as a stop key). `translate_settings` renames them,
moves `model` into `model_config` (and `multiagent` into the multi-agent settings), and
reads YAML 1.1's exponent strings (`1e-3`, which PyYAML returns as a str) as numbers.
A name that has no meaning here raises a ConfigError that says so.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from scalerl.utils.errors import ConfigError

# Old name -> today's name (RLlib's renames from the old to the new API stack).
RENAMED = {
    "lambda": "lambda_",
    "num_workers": "num_env_runners",
    "num_rollout_workers": "num_env_runners",
    "num_envs_per_worker": "num_envs_per_env_runner",
    "num_cpus_per_worker": "num_cpus_per_env_runner",
    "sgd_minibatch_size": "minibatch_size",
    "num_sgd_iter": "num_epochs",
    "evaluation_num_workers": "evaluation_num_env_runners",
    "recreate_failed_workers": "restart_failed_env_runners",
    "recreate_failed_env_runners": "restart_failed_env_runners",
    "ignore_worker_failures": "ignore_env_runner_failures",
    "max_num_worker_restarts": "max_num_env_runner_restarts",
    "delay_between_worker_restarts_s": "delay_between_env_runner_restarts_s",
    "learning_starts": "num_steps_sampled_before_learning_starts",
    "timesteps_per_iteration": "min_sample_timesteps_per_iteration",
    "min_iter_time_s": "min_time_s_per_iteration",
    "model_config_dict": "model_config",
}
# Old API-stack switches: meaningless with one API stack, dropped.
DROPPED = (
    "_enable_new_api_stack",
    "_enable_learner_api",
    "_enable_rl_module_api",
    "enable_connectors",
    "simple_optimizer",
    "preprocessor_pref",
)
# Old `model` keys -> `model_config` keys (the rest keep their names).
MODEL_RENAMED = {
    "post_fcnet_hiddens": "head_fcnet_hiddens",
    "post_fcnet_activation": "head_fcnet_activation",
}
MODEL_NOT_SUPPORTED = {
    "custom_model": "custom ModelV2 models (old API stack; write an RLModule)",
    "custom_model_config": "custom ModelV2 models (old API stack; write an RLModule)",
    "custom_action_dist": "custom action distributions of the old API stack",
    "dim": "Atari frame preprocessing (`dim`)",
    "grayscale": "Atari frame preprocessing (`grayscale`)",
    "zero_mean": "Atari frame preprocessing (`zero_mean`)",
    "framestack": "frame stacking (`framestack`)",
    "custom_preprocessor": "custom preprocessors of the old API stack",
}
# Old stop keys -> the keys `scalerl train` stops on.
STOP_RENAMED = {
    "episode_reward_mean": "env_runners/episode_return_mean",
    "env_runners/episode_reward_mean": "env_runners/episode_return_mean",
    "sampler_results/episode_reward_mean": "env_runners/episode_return_mean",
    "timesteps_total": "num_env_steps_sampled_lifetime",
}
# A YAML 1.1 float without a dot (`1e-3`, `5e5`), which PyYAML reads as a string.
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
# Settings whose values belong to the user's env or objects: left exactly as written.
_VERBATIM = ("env", "env_config")


def yaml_number(value: Any) -> Any:
    """`value` with every exponent string (`"1e-3"`) in it, nested in lists and dicts, as a
    float (an int when it is whole and written without a dot or a negative exponent,
    e.g. `"1e5"`)."""
    if isinstance(value, str) and _EXPONENT_NUMBER.match(value):
        number = float(value)
        mantissa, _, exponent = value.lower().partition("e")
        whole = "." not in mantissa and not exponent.startswith("-") and number.is_integer()
        return int(number) if whole else number
    if isinstance(value, list):
        return [yaml_number(v) for v in value]
    if isinstance(value, dict):
        return {k: yaml_number(v) for k, v in value.items()}
    return value


def translate_model(model: Any) -> dict[str, Any]:
    """An old `model` dict as `model_config` (ConfigError for what only ModelV2 had)."""
    if not isinstance(model, dict):
        raise ConfigError(f"`model` must be a mapping of model settings, got {model!r}.")
    out = {}
    for key, value in model.items():
        if key in MODEL_NOT_SUPPORTED:
            raise ConfigError(
                f"`model: {{{key}: ...}}`: scalerl does not support {MODEL_NOT_SUPPORTED[key]}."
            )
        out[MODEL_RENAMED.get(key, key)] = yaml_number(value)
    return out


def translate_exploration(config: dict[str, Any]) -> None:
    """An old `exploration_config` of type EpsilonGreedy as DQN's `epsilon` schedule."""
    exploration = config.pop("exploration_config")
    if not isinstance(exploration, dict) or exploration.get("type", "EpsilonGreedy") not in (
        "EpsilonGreedy",
        "StochasticSampling",
    ):
        raise ConfigError(
            f"`exploration_config` {exploration!r}: scalerl translates only the old "
            "EpsilonGreedy settings (into `epsilon`) and StochasticSampling (the default)."
        )
    if exploration.get("type", "EpsilonGreedy") == "EpsilonGreedy":
        start = float(yaml_number(exploration.get("initial_epsilon", 1.0)))
        end = float(yaml_number(exploration.get("final_epsilon", 0.05)))
        steps = int(yaml_number(exploration.get("epsilon_timesteps", 100000)))
        config.setdefault("epsilon", [[0, start], [steps, end]])


def translate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """RLlib's config settings with old names translated (see the module docstring);
    today's names pass through unchanged."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key in DROPPED:
            continue
        if key == "model":
            out["model_config"] = {**out.get("model_config", {}), **translate_model(value)}
        elif key == "multiagent":
            if not isinstance(value, dict):
                raise ConfigError(f"`multiagent` must be a mapping, got {value!r}.")
            out.update(value)
        elif key == "vf_share_layers":  # old PPO: a top-level setting, now a model setting
            out.setdefault("model_config", {})["vf_share_layers"] = value
        elif key == "evaluation_config" and isinstance(value, dict):
            out[key] = translate_settings(value)
        elif key in _VERBATIM:
            out[key] = value
        else:
            new = RENAMED.get(key, key)
            if new in out and new != key:
                raise ConfigError(f"`{key}` and `{new}` are the same setting (old and new name).")
            out[new] = yaml_number(value)
    if out.get("framework") in ("tf", "tf2", "tfe"):  # "works for both torch and tf"
        warnings.warn(
            f"framework={out['framework']!r} in an RLlib config file read as 'torch': scalerl "
            "runs on PyTorch only.",
            stacklevel=2,
        )
        out["framework"] = "torch"
    if "exploration_config" in out:
        translate_exploration(out)
    return out


def translate_stop(stop: dict[str, Any]) -> dict[str, Any]:
    """RLlib's stop criteria with old metric names as today's, numbers read as numbers."""
    return {STOP_RENAMED.get(k, k): yaml_number(v) for k, v in stop.items()}
