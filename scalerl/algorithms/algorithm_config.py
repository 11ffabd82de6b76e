"""AlgorithmConfig: RLlib's fluent config builder, with validation that names what to fix."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import gymnasium as gym

from scalerl.algorithms import config_rllib_compat as compat
from scalerl.algorithms.config_checks import validate_common
from scalerl.algorithms.config_storage import (
    check_stored_env_id,
    decode_setting,
    encode_setting,
)
from scalerl.algorithms.fault_tolerance_config import (
    FAULT_TOLERANCE_DEFAULTS,
)
from scalerl.algorithms.legacy_keys import translate_model
from scalerl.algorithms.multi_agent_config import (
    config_for_module,
    mapping_fn,
    normalize_policies,
)
from scalerl.algorithms.not_provided import NotProvided
from scalerl.algorithms.tune_link import link_to_tune
from scalerl.callbacks.callbacks import ALL_EVENTS
from scalerl.core.models.initializers import normalize_model_config
from scalerl.core.rl_module import DefaultModelConfig, RLModule, RLModuleSpec
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.utils.errors import ConfigError, did_you_mean, unknown_keys_error
from scalerl.utils.schedules import validate_schedule

_C = TypeVar("_C", bound="AlgorithmConfig")
# The builder methods, in the order RLlib's docs list them; their signatures are the settings.
BUILDER_METHODS = (
    "environment",
    "framework",
    "env_runners",
    "training",
    "learners",
    "evaluation",
    "rl_module",
    "multi_agent",
    "fault_tolerance",
    "callbacks",
    "reporting",
    "debugging",
    "api_stack",
    "resources",
    "checkpointing",
    "experimental",
    "offline_data",
)
# Names in a builder method's `locals()` that are not settings.
_NOT_SETTINGS = {"self", "unknown", "kwargs", "__class__"}


def _builder_parameters(cls: type, method: str) -> list[inspect.Parameter]:
    """The settings' parameters of builder `method` in `cls` and its bases, bases first."""
    params: dict[str, inspect.Parameter] = {}
    for klass in reversed(cls.__mro__):
        if method in vars(klass):
            for param in inspect.signature(vars(klass)[method]).parameters.values():
                if param.kind is not param.VAR_KEYWORD and param.name not in _NOT_SETTINGS:
                    params.setdefault(param.name, param)
    return list(params.values())


def builder_sections(cls: type) -> dict[str, tuple[str, ...]]:
    """Builder method -> the settings it takes, read from the signatures of `cls` and its
    bases (a subclass's `training(lambda_=..., **kwargs)` adds to its base's)."""
    return {m: tuple(p.name for p in _builder_parameters(cls, m)) for m in BUILDER_METHODS}


def bool_settings(cls: type) -> tuple[str, ...]:
    """The settings whose builder argument is typed `bool`: validate() checks that they
    are True or False (RLlib's ignored ones aside)."""
    params = [p for m in BUILDER_METHODS for p in _builder_parameters(cls, m)]
    bools = (p.name for p in params if p.annotation in ("bool", bool) and p.name not in IGNORED)
    return tuple(dict.fromkeys(bools))


# Setting name in a builder call -> attribute name (RLlib stores `framework` as `framework_str`).
ATTRIBUTE = {
    "framework": "framework_str",
    **{event: f"callbacks_{event}" for event in ALL_EVENTS},
}
# Settings accepted for RLlib compatibility that change nothing here (one API stack only).
IGNORED = {
    "enable_rl_module_and_learner",
    "enable_env_runner_and_connector_v2",
    "log_level",
    *compat.COMPAT_IGNORED,
}


class AlgorithmConfig:
    """The settings of an algorithm, set by fluent builder methods, then `build_algo()`.

    Example:
        config = PPOConfig().environment("CartPole-v1").training(lr=3e-4).env_runners(
            num_env_runners=2)
        algo = config.build_algo()

    Every builder method takes its settings as typed keyword arguments (documented there);
    every setting is also a plain attribute (`config.lr`). `validate()` (called by
    `build_algo()`) raises a ConfigError that names a bad setting and what would be valid;
    `to_dict()`/`from_dict()` give the JSON form stored in checkpoints.

    Args:
        algo_class: The Algorithm class `build_algo()` builds (subclasses set their own).
    """

    algo_class: type | None = None
    # Whether multi-agent runs may use recurrent modules (`use_lstm` / `use_attention`):
    # the algorithm's learner trains on the recurrent columns of [M, 1] fragments.
    multi_agent_memory = False
    # Builder method -> its settings, and the settings typed bool; read from the signatures
    # when the class is created (`builder_sections`, `bool_settings`).
    sections: dict[str, tuple[str, ...]] = {}
    bool_settings: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.sections = builder_sections(cls)
        cls.bool_settings = bool_settings(cls)

    def __init__(self, algo_class: type | None = None):
        """Every setting at its default (the builder methods' docstrings list them)."""
        if algo_class is not None:
            self.algo_class = algo_class
        # environment
        self.env: Any = None
        self.env_config: dict = {}
        self.observation_space: gym.Space | None = None
        self.action_space: gym.Space | None = None
        self.clip_rewards: bool | float | None = None
        self.normalize_actions = True
        self.clip_actions = False
        self.disable_env_checking = False
        # Per-step checks of env data (`env/checks.py`); "drop": count and drop NaN/inf steps.
        self.check_env_steps = True
        self.on_nonfinite = "raise"
        # framework
        self.framework_str = "torch"
        # env_runners
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 1
        self.rollout_fragment_length: int | str = "auto"
        self.sample_timeout_s = 60.0
        self.num_cpus_per_env_runner = 1
        self.explore = True
        self.batch_mode = "truncate_episodes"
        # "NoFilter", "MeanStdFilter", or {"type": "MeanStdFilter", <its settings>}.
        self.observation_filter: str | dict = "NoFilter"
        # RLlib's `lambda env: MeanStdFilter()`; resolved into `observation_filter` at build.
        self.env_to_module_connector: Any = None
        self.max_requests_in_flight_per_env_runner = 1
        # training
        self.lr: Any = 1e-3
        self.gamma = 0.99
        self.train_batch_size = 4000
        self.train_batch_size_per_learner: int | None = None
        self.minibatch_size = 128
        self.num_epochs = 1
        self.grad_clip: float | None = None
        self.grad_clip_by = "global_norm"
        self.shuffle_batch_per_epoch = True
        # learners
        self.num_learners = 0
        self.num_gpus_per_learner = 0
        self.num_cpus_per_learner = 1
        # evaluation
        self.evaluation_interval: int | None = None
        self.evaluation_duration = 10
        self.evaluation_duration_unit = "episodes"
        self.evaluation_num_env_runners = 0
        self.evaluation_config: dict | None = None
        self.evaluation_parallel_to_training = False
        self.custom_evaluation_function: Any = None
        # rl_module
        self.model_config: dict = {}
        self.rl_module_spec: RLModuleSpec | None = None
        # multi_agent (no policies: single-agent)
        self.policies: Any = {}
        self.policy_mapping_fn: Any = None
        self.policies_to_train: Any = None
        self.algorithm_config_overrides_per_module: dict = {}
        # fault_tolerance (RLlib's names and defaults)
        for key, value in FAULT_TOLERANCE_DEFAULTS.items():
            setattr(self, key, value)
        # reporting / debugging
        self.metrics_num_episodes_for_smoothing = 100
        self.logger_config: dict | None = None  # the run directory (utils/run_logger.py)
        self.min_time_s_per_iteration: float | None = None
        # Callbacks: RLlibCallback subclass(es), and functions per event (RLlib's names).
        self.callbacks_class: Any = None
        for event in ALL_EVENTS:
            setattr(self, f"callbacks_{event}", None)
        self.seed: int | None = None
        # resources, checkpointing, experimental, offline_data (config_rllib_compat.py)
        for key, value in compat.COMPAT_DEFAULTS.items():
            setattr(self, key, copy.deepcopy(value))

    # -- builder methods -------------------------------------------------------------
    # Each method's signature declares its settings (`sections` is read from them) and its
    # docstring documents each one; `__init__` holds the defaults. tests/unit/
    # test_config_api.py keeps the three in step.
    def _set(self: _C, section: str, args: dict[str, Any]) -> _C:
        """Set the arguments a builder method was given (its `locals()`); NotProvided ones
        keep their value. Unknown names raise a ConfigError with the nearest valid one."""
        unknown = args.get("unknown") or {}
        if unknown:
            raise unknown_keys_error(f"`config.{section}()`", list(unknown), self.sections[section])
        for key, value in args.items():
            if key in _NOT_SETTINGS or value is NotProvided or key in IGNORED:
                continue
            setattr(self, ATTRIBUTE.get(key, key), value)
        return self

    def environment(
        self: _C,
        env: str | type | Callable[..., Any] | None = NotProvided,
        *,
        env_config: dict | None = NotProvided,
        observation_space: gym.Space | None = NotProvided,
        action_space: gym.Space | None = NotProvided,
        clip_rewards: bool | float | None = NotProvided,
        normalize_actions: bool = NotProvided,
        clip_actions: bool = NotProvided,
        disable_env_checking: bool = NotProvided,
        check_env_steps: bool = NotProvided,
        on_nonfinite: str = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the environment and how its data is treated.

        Args:
            env: A Gymnasium id ("CartPole-v1"), a name given to `scalerl.register_env`, a
                `gymnasium.Env` or `MultiAgentEnv` class, or a creator `fn(env_config) ->
                env`. Default: `None` (must be set before `build_algo()`).
            env_config: Keyword settings passed to the env's constructor or creator (a
                dict). Default: `{}`.
            observation_space: The observation space, if the env's own is not the one to
                use (None: the env's). Default: `None`.
            action_space: The action space, if the env's own is not the one to use (None:
                the env's). Default: `None`.
            clip_rewards: None or False: no clipping; True: the reward's sign; a number c >
                0: clip to [-c, c]. Default: `None`.
            normalize_actions: Map the policy's Box actions from [-1, 1] to the space's
                bounds (True or False). Default: `True`.
            clip_actions: Clip Box actions to the space's bounds before stepping (True or
                False). Default: `False`.
            disable_env_checking: Skip the checks of the first steps of a multi-agent env
                (True or False). Default: `False`.
            check_env_steps: Check every step's data (shapes, dtypes, NaN/inf) against the
                spaces (True or False; see docs/design.md, "Data checks"). Default: `True`.
            on_nonfinite: What a NaN/inf observation or reward does: "raise" (an EnvError)
                or "drop" (count and drop the step; needs `check_env_steps`). Default:
                `'raise'`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("environment", locals())

    def framework(self: _C, framework: str = NotProvided, **unknown: Any) -> _C:
        """Set the deep-learning framework (RLlib's `framework_str` attribute).

        Args:
            framework: "torch", the only one scalerl runs on; RLlib's "tf2" fails at
                `validate()`. Default: `'torch'`.
            **unknown: Not a setting: any other name raises a ConfigError.

        Returns:
            This config, for chaining.
        """
        return self._set("framework", locals())

    def env_runners(
        self: _C,
        *,
        num_env_runners: int = NotProvided,
        num_envs_per_env_runner: int = NotProvided,
        num_cpus_per_env_runner: float = NotProvided,
        sample_timeout_s: float | None = NotProvided,
        env_to_module_connector: Callable[..., Any] | None = NotProvided,
        rollout_fragment_length: int | str = NotProvided,
        batch_mode: str = NotProvided,
        explore: bool = NotProvided,
        observation_filter: str | dict = NotProvided,
        max_requests_in_flight_per_env_runner: int = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set how experience is sampled: EnvRunners, vectorized envs, fragments, filters.

        Args:
            num_env_runners: Ray EnvRunner actors; 0 samples in the driver process with no
                Ray start-up (an integer >= 0). Default: `0`.
            num_envs_per_env_runner: Gymnasium envs stepped together (one batched forward
                pass per step) in each EnvRunner (an integer >= 1). Default: `1`.
            num_cpus_per_env_runner: CPUs Ray reserves per EnvRunner actor (a number >= 0;
                fractions such as 0.5 pack runners). Default: `1`.
            sample_timeout_s: Seconds to wait for a runner's sample before it counts as
                stalled (a number > 0, or None: wait forever). Default: `60.0`.
            env_to_module_connector: RLlib's `lambda env: MeanStdFilter()`: resolved into
                `observation_filter` at build time (set one of the two). Default: `None`.
            rollout_fragment_length: Env steps per env in one sample (an integer >= 1), or
                "auto": the train batch split evenly over all envs. Default: `'auto'`.
            batch_mode: How fragments are cut: "truncate_episodes" (the only mode:
                fragments of fixed length, episodes continue across them). Default:
                `'truncate_episodes'`.
            explore: Sample exploratory actions (True) or the greedy/deterministic ones
                (False) while training. Default: `True`.
            observation_filter: "NoFilter", "MeanStdFilter", or {"type": "MeanStdFilter",
                <its settings>}: running normalization of observations, synced from the
                runners. Default: `'NoFilter'`.
            max_requests_in_flight_per_env_runner: Sample calls an asynchronous algorithm
                (APEX-DQN) keeps in flight per Ray EnvRunner (an integer >= 1). Default:
                `1`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("env_runners", locals())

    def training(
        self: _C,
        *,
        gamma: float = NotProvided,
        lr: float | list | None = NotProvided,
        grad_clip: float | None = NotProvided,
        grad_clip_by: str = NotProvided,
        train_batch_size: int = NotProvided,
        train_batch_size_per_learner: int | None = NotProvided,
        num_epochs: int = NotProvided,
        minibatch_size: int = NotProvided,
        shuffle_batch_per_epoch: bool = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the learning settings every algorithm shares (algorithms add their own).

        Args:
            gamma: The discount factor, in [0, 1]. Default: `0.99`.
            lr: The learning rate: a number > 0 or a schedule [[timestep, value], ...]
                interpolated linearly. Default: `0.001`.
            grad_clip: Clip gradients to this size (a number > 0), or None: no clipping.
                Default: `None`.
            grad_clip_by: What `grad_clip` bounds: "global_norm" (all gradients together),
                "norm" (each tensor's norm) or "value" (each element). Default:
                `'global_norm'`.
            train_batch_size: Env steps per training iteration (on-policy) or per replayed
                batch (off-policy); an integer >= 1. Default: `4000`.
            train_batch_size_per_learner: The batch per Learner; if set (an integer >= 1)
                it replaces `train_batch_size` (times `max(1, num_learners)`). Default:
                `None`.
            num_epochs: Passes over each train batch (an integer >= 1). Default: `1`.
            minibatch_size: Rows per SGD step (an integer >= 1, at most the train batch).
                Default: `128`.
            shuffle_batch_per_epoch: Shuffle the batch before each epoch (True or False).
                Default: `True`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        if "model" in unknown:  # RLlib's old `training(model={...})`: the model config
            self.model_config = {**self.model_config, **translate_model(unknown.pop("model"))}
        return self._set("training", locals())

    def learners(
        self: _C,
        *,
        num_learners: int = NotProvided,
        num_cpus_per_learner: int = NotProvided,
        num_gpus_per_learner: float = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the Learners: in the driver, or N data-parallel Ray actors.

        Args:
            num_learners: Remote Learner actors training data-parallel; 0: one Learner in
                the driver (an integer >= 0). Default: `0`.
            num_cpus_per_learner: CPUs per Learner (torch threads in the driver, Ray's
                reservation for an actor; an integer >= 1). Default: `1`.
            num_gpus_per_learner: GPUs per Learner (a number >= 0; > 0 trains on CUDA when
                it is available). Default: `0`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("learners", locals())

    def evaluation(
        self: _C,
        *,
        evaluation_interval: int | None = NotProvided,
        evaluation_duration: int | str = NotProvided,
        evaluation_duration_unit: str = NotProvided,
        evaluation_parallel_to_training: bool = NotProvided,
        evaluation_config: AlgorithmConfig | dict | None = NotProvided,
        evaluation_num_env_runners: int = NotProvided,
        custom_evaluation_function: Callable[..., Any] | None = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set when and how the algorithm evaluates itself inside `train()`.

        Args:
            evaluation_interval: Evaluate every this many training iterations (an integer
                >= 0), or None/0: never. Default: `None`.
            evaluation_duration: How much to evaluate: episodes or env steps, as
                `evaluation_duration_unit` says (an integer >= 1), or "auto" (with
                `evaluation_parallel_to_training`): one unit per evaluation env. Default:
                `10`.
            evaluation_duration_unit: "episodes" or "timesteps". Default: `'episodes'`.
            evaluation_parallel_to_training: RLlib evaluates while the training step
                runs; scalerl accepts it and evaluates in the same iteration right after
                the training step (same results, not overlapped). Default: `False`.
            evaluation_config: Settings that differ while evaluating, e.g.
                `AlgorithmConfig.overrides(explore=False)` (a dict, or a config whose
                `to_dict()` is stored). Default: `None`.
            evaluation_num_env_runners: Ray EnvRunners for evaluation; 0: evaluate in the
                driver (an integer >= 0). Default: `0`.
            custom_evaluation_function: `fn(algorithm, eval_env_runner_group) ->
                (results dict, env_steps, agent_steps)` run instead of the built-in
                evaluation (RLlib's new-stack signature); stored by name. Default: `None`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        if isinstance(evaluation_config, AlgorithmConfig):
            evaluation_config = evaluation_config.to_dict()
        return self._set("evaluation", locals())

    def rl_module(
        self: _C,
        *,
        model_config: dict | DefaultModelConfig = NotProvided,
        rl_module_spec: RLModuleSpec | MultiRLModuleSpec | None = NotProvided,
        algorithm_config_overrides_per_module: dict[str, dict] = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the neural networks: the default module's model config, or a custom module.

        Args:
            model_config: Settings of the default module (`DefaultModelConfig`'s fields:
                fcnet_hiddens, fcnet_activation, conv_filters, use_lstm, ...), as a dict or
                a `DefaultModelConfig`. Default: `{}`.
            rl_module_spec: An `RLModuleSpec` naming a custom `module_class` (and its
                model config); None: the algorithm's default module. A
                `MultiRLModuleSpec` sets one spec per policy: its specs go into
                `policies` (`{module_id: spec}`). Default: `None`.
            algorithm_config_overrides_per_module: {module id: {setting: value}}: settings
                that differ per module in a multi-agent run (the same setting as in
                `multi_agent()`). Default: `{}`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        if isinstance(rl_module_spec, MultiRLModuleSpec):
            rl_module_spec = compat.absorb_multi_rl_module_spec(self, rl_module_spec)
        if "model_config_dict" in unknown:  # RLlib's older name
            model_config = compat.model_config_alias(model_config, unknown.pop("model_config_dict"))
        if dataclasses.is_dataclass(model_config) and not isinstance(model_config, type):
            model_config = dataclasses.asdict(model_config)
        if isinstance(model_config, dict):  # torch.nn.init functions -> their names
            model_config = normalize_model_config(model_config)
        return self._set("rl_module", locals())

    def multi_agent(
        self: _C,
        *,
        policies: set[str] | list[str] | dict[str, RLModuleSpec | None] = NotProvided,
        policy_mapping_fn: Callable[..., str] | None = NotProvided,
        policies_to_train: list[str] | set[str] | None = NotProvided,
        algorithm_config_overrides_per_module: dict[str, dict] = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the policies (modules) of a multi-agent run and which agent uses which.

        Args:
            policies: Module ids (a set or list), or {id: RLModuleSpec or None (the
                algorithm's default module)}; empty: a single-agent run. Default: `{}`.
            policy_mapping_fn: `fn(agent_id, episode, **kwargs) -> module id`; needed with
                more than one policy (None: the only policy). Default: `None`.
            policies_to_train: Module ids that learn (None: all of them). Default: `None`.
            algorithm_config_overrides_per_module: {module id: {setting: value}}: settings
                that differ per module, e.g. {"p1": {"lr": 1e-4}}. Default: `{}`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        policies = compat.keep_policy_specs(self.policies, policies)
        return self._set("multi_agent", locals())

    @property
    def is_multi_agent(self) -> bool:
        """Whether `multi_agent(policies=...)` names any policy."""
        return bool(normalize_policies(self.policies))

    def get_policy_mapping_fn(self) -> Callable[..., str]:
        """The policy mapping function (the only policy's id when none was given)."""
        return mapping_fn(self)

    def get_config_for_module(self, module_id: str) -> AlgorithmConfig:
        """This config with `algorithm_config_overrides_per_module[module_id]` applied
        (RLlib's name); the config itself when the module has no overrides."""
        return config_for_module(self, module_id)

    def fault_tolerance(
        self: _C,
        *,
        restart_failed_env_runners: bool = NotProvided,
        ignore_env_runner_failures: bool = NotProvided,
        max_num_env_runner_restarts: int = NotProvided,
        delay_between_env_runner_restarts_s: float = NotProvided,
        restart_failed_sub_environments: bool = NotProvided,
        env_runner_health_probe_timeout_s: float = NotProvided,
        env_runner_restore_timeout_s: float = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set what happens when an EnvRunner or one of its envs fails (docs/design.md,
        "Fault tolerance").

        Args:
            restart_failed_env_runners: Replace an EnvRunner actor that died, raised or
                stalled by a new one with the current weights and filter statistics (True
                or False). Default: `True`.
            ignore_env_runner_failures: Without a restart, drop the failed runner and go on
                with the others instead of raising (True or False). Default: `False`.
            max_num_env_runner_restarts: Restarts allowed over the group's lifetime (an
                integer >= 0). Default: `1000`.
            delay_between_env_runner_restarts_s: Seconds to wait before a restart (a
                number >= 0). Default: `60.0`.
            restart_failed_sub_environments: Close, recreate and reset an env whose
                `step()`/`reset()` raises, inside its runner; its episode is dropped (True
                or False). Default: `False`.
            env_runner_health_probe_timeout_s: After `sample_timeout_s`, seconds a silent
                runner gets to answer a health probe before it counts as stalled (a number
                >= 0). Default: `30.0`.
            env_runner_restore_timeout_s: Seconds a new runner may take to come up with its
                weights before the restart counts as failed (a number >= 0). Default:
                `1800.0`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("fault_tolerance", locals())

    def callbacks(
        self: _C,
        callbacks_class: Any = NotProvided,
        *,
        on_algorithm_init: Any = NotProvided,
        on_train_result: Any = NotProvided,
        on_evaluate_start: Any = NotProvided,
        on_evaluate_end: Any = NotProvided,
        on_checkpoint_loaded: Any = NotProvided,
        on_episode_created: Any = NotProvided,
        on_episode_start: Any = NotProvided,
        on_episode_step: Any = NotProvided,
        on_episode_end: Any = NotProvided,
        on_sample_end: Any = NotProvided,
        on_environment_created: Any = NotProvided,
        on_env_runners_recreated: Any = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the user code called at the algorithm's events (`scalerl.callbacks`).

        Args:
            callbacks_class: An `RLlibCallback` subclass, or a list of them; one instance
                of each is made per algorithm. Default: `None`.
            on_algorithm_init: Function(s) called as `fn(algorithm=..., metrics_logger=...)`
                when the algorithm is built. Default: `None`.
            on_train_result: Function(s) called after each `train()` with `algorithm`,
                `metrics_logger` and `result`. Default: `None`.
            on_evaluate_start: Function(s) called before `evaluate()` with `algorithm`,
                `metrics_logger`. Default: `None`.
            on_evaluate_end: Function(s) called after `evaluate()` with `algorithm`,
                `metrics_logger`, `evaluation_metrics`. Default: `None`.
            on_checkpoint_loaded: Function(s) called after a checkpoint is restored, with
                `algorithm`. Default: `None`.
            on_episode_created: Function(s) called in each EnvRunner for a new episode,
                before its env is reset, with `episode`, `env_runner`, `metrics_logger`,
                `env`, `env_index`, `rl_module`. Default: `None`.
            on_episode_start: Function(s) called after an episode's reset (same
                arguments). Default: `None`.
            on_episode_step: Function(s) called after each env step of an episode (same
                arguments). Default: `None`.
            on_episode_end: Function(s) called when an episode terminated or was truncated
                (same arguments). Default: `None`.
            on_sample_end: Function(s) called at the end of each EnvRunner `sample()` with
                `env_runner`, `metrics_logger`, `samples` (the episodes). Default: `None`.
            on_environment_created: Function(s) called once per EnvRunner after its envs
                are made, with `env_runner`, `metrics_logger`, `env`, `env_context`.
                Default: `None`.
            on_env_runners_recreated: Function(s) called in the driver after failed Ray
                EnvRunners were replaced, with `algorithm`, `env_runner_group`,
                `env_runner_indices`, `is_evaluation`. Default: `None`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("callbacks", locals())

    def reporting(
        self: _C,
        *,
        metrics_num_episodes_for_smoothing: int = NotProvided,
        min_time_s_per_iteration: float | None = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set how results are reported.

        Args:
            metrics_num_episodes_for_smoothing: Episodes averaged in the result dict's
                episode metrics (an integer >= 1). Default: `100`.
            min_time_s_per_iteration: `train()` repeats the training step until this many
                seconds have passed (a number >= 0), or None: one step. Default: `None`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("reporting", locals())

    def debugging(
        self: _C,
        *,
        log_level: str = NotProvided,
        seed: int | None = NotProvided,
        logger_config: dict | None = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Set the seed, the run directory (and RLlib's log level, accepted and ignored).

        Args:
            log_level: RLlib's log level; accepted for compatibility, changes nothing
                (scalerl logs through the `logging` module). Default: not stored.
            seed: Seeds torch, numpy and every env (each EnvRunner and env gets its own
                seed derived from it); an integer >= 0, or None: unseeded. Default: `None`.
            logger_config: Where `train()` writes its run directory (params, progress.csv,
                result.json, TensorBoard; `algo.logdir`): None for
                `$SCALERL_RESULTS_DIR` (default `~/scalerl_results`)/<Algo>_<env>_<time>,
                `{"logdir": path}` for that directory, `{"type": None}` for none (see
                `scalerl.utils.run_logger`). Default: `None`.
            **unknown: Not a setting: any other name raises a ConfigError that suggests
                the nearest valid one.

        Returns:
            This config, for chaining.
        """
        return self._set("debugging", locals())

    def api_stack(
        self: _C,
        enable_rl_module_and_learner: bool = NotProvided,
        enable_env_runner_and_connector_v2: bool = NotProvided,
        **unknown: Any,
    ) -> _C:
        """Accepted for RLlib compatibility: scalerl has one API stack, RLlib's new one.

        Args:
            enable_rl_module_and_learner: Accepted and ignored (always on). Default: not
                stored.
            enable_env_runner_and_connector_v2: Accepted and ignored (always on). Default:
                not stored.
            **unknown: Not a setting: any other name raises a ConfigError.

        Returns:
            This config, for chaining.
        """
        return self._set("api_stack", locals())

    resources = compat.resources
    checkpointing = compat.checkpointing
    experimental = compat.experimental
    offline_data = compat.offline_data

    @classmethod
    def overrides(cls, **kwargs: Any) -> dict[str, Any]:
        """Settings to override, e.g. for `evaluation(evaluation_config=...)`."""
        return kwargs

    # -- derived values --------------------------------------------------------------------
    @property
    def total_train_batch_size(self) -> int:
        """Rows per training iteration: `train_batch_size_per_learner` times the Learners
        (at least one) if it is set, else `train_batch_size`."""
        if self.train_batch_size_per_learner is not None:
            return self.train_batch_size_per_learner * max(1, self.num_learners)
        return self.train_batch_size

    def get_rollout_fragment_length(self) -> int:
        """Env steps per env in one sample: `rollout_fragment_length`, or for "auto" the
        train batch split evenly over every env of every EnvRunner (rounded up)."""
        if self.rollout_fragment_length != "auto":
            return int(self.rollout_fragment_length)
        envs = max(1, self.num_env_runners) * self.num_envs_per_env_runner
        return max(1, math.ceil(self.total_train_batch_size / envs))

    def get_default_rl_module_class(self, model_config: dict | None = None) -> type[RLModule]:
        """The module class built when no `rl_module_spec.module_class` is given."""
        raise NotImplementedError

    def get_rl_module_spec(
        self, observation_space: gym.Space, action_space: gym.Space
    ) -> RLModuleSpec:
        """The spec of the module to build for these spaces: `rl_module_spec`'s class,
        spaces and model config where given, else the algorithm's default module and
        `model_config`."""
        spec = self.rl_module_spec or RLModuleSpec()
        model_config = {**self.model_config, **(spec.model_config or {})}
        return RLModuleSpec(
            module_class=spec.module_class or self.get_default_rl_module_class(model_config),
            observation_space=spec.observation_space or observation_space,
            action_space=spec.action_space or action_space,
            model_config=model_config,
            catalog_class=spec.catalog_class,
            load_state_path=spec.load_state_path,
        )

    # -- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first invalid setting and what would be valid
        (the common settings: `config_checks.validate_common`; subclasses add theirs)."""
        validate_common(self)

    def _validate_lr(self) -> None:
        """`lr`: a number or schedule > 0 (SAC replaces it by actor, critic and alpha rates)."""
        validate_schedule("lr", self.lr, positive=True)

    def check_coefficient(self, name: str) -> None:
        """A loss coefficient: a finite number >= 0."""
        self.check_number(name)
        value = getattr(self, name)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"`{name}` is a loss coefficient: it must be >= 0, got {value!r}.")

    def _check_int(self, name: str, minimum: int, extra: str = "") -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"`{name}` must be an integer >= {minimum} {extra}".rstrip() + f", got {value!r}."
            )

    def check_number(self, name: str, extra: str = "") -> None:
        """ConfigError unless setting `name` is an int or float (not a bool); `extra` adds
        to the message what else is valid (e.g. "or None")."""
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"`{name}` must be a number {extra}".rstrip() + f", got {value!r}.")

    def _check_choice(self, name: str, choices: tuple) -> None:
        value = getattr(self, name)
        if value not in choices:
            hint = did_you_mean(str(value), choices)
            raise ConfigError(f"`{name}` must be one of {choices}, got {value!r}.{hint}")

    # -- building -----------------------------------------------------------------------
    def build_algo(self) -> Any:
        """Validate and build the algorithm."""
        if self.algo_class is None:
            raise ConfigError(f"{type(self).__name__} has no algorithm class to build.")
        if self._validate_config:
            self.validate()
        algo = self.algo_class(config=self.copy())
        algo.callbacks.call("on_algorithm_init", algorithm=algo, metrics_logger=algo.metrics)
        return algo

    build = build_algo

    def copy(self: _C, copy_frozen: bool | None = None) -> _C:
        """A deep copy (`copy_frozen` is RLlib's and ignored: configs are never frozen)."""
        return copy.deepcopy(self)

    # -- serialization ------------------------------------------------------------------
    def _setting(self, key: str) -> Any:
        """The value of setting `key` (a builder argument's name)."""
        return getattr(self, ATTRIBUTE.get(key, key))

    def _all_keys(self) -> list[str]:
        keys = (k for section in self.sections.values() for k in section if k not in IGNORED)
        return list(dict.fromkeys(keys))  # one setting may be in two methods (RLlib's)

    def to_dict(self, mapping_table: dict | None = None) -> dict[str, Any]:
        """Every setting as plain JSON-able data (classes as `module:QualName` strings).

        `mapping_table` (agent id -> module id) stands in for a `policy_mapping_fn` that
        cannot be stored by name (a lambda)."""
        return {
            key: encode_setting(self, key, self._setting(key), mapping_table)
            for key in self._all_keys()
        }

    def update_from_dict(
        self, settings: dict[str, Any], trusted: tuple | list = ()
    ) -> AlgorithmConfig:
        """Set the settings in `settings` (as `to_dict()` writes them).

        Classes and functions stored by name resolve only against what this process
        trusts, plus `trusted` (see `scalerl.utils.trust`); nothing is imported for them.
        """
        trusted = tuple(trusted)
        valid = self._all_keys() + sorted(IGNORED)
        unknown = [k for k in settings if k not in valid]
        if unknown:
            raise unknown_keys_error(f"{type(self).__name__}.from_dict()", unknown, valid)
        for key, value in settings.items():
            if key not in IGNORED:
                setattr(self, ATTRIBUTE.get(key, key), decode_setting(key, value, trusted))
        return self

    @classmethod
    def from_dict(cls, settings: dict[str, Any], trusted: tuple | list = ()) -> AlgorithmConfig:
        """A config from `to_dict()`'s output, e.g. read from a checkpoint: names resolve only
        against what this process trusts, plus `trusted`; an env id that would import a
        module is refused."""
        check_stored_env_id(settings.get("env"))
        check_stored_env_id((settings.get("evaluation_config") or {}).get("env"))
        return cls().update_from_dict(settings, trusted)


AlgorithmConfig.sections = builder_sections(AlgorithmConfig)
AlgorithmConfig.bool_settings = bool_settings(AlgorithmConfig)
# The base config's settings per builder method (subclasses: `PPOConfig.sections`).
SECTIONS = AlgorithmConfig.sections

# Ray Tune: once `ray.tune` is imported too, scalerl's algorithms become Tune trainables and
# configs valid `param_space`s (scalerl/tune/); never imports Ray Tune itself.
link_to_tune()
