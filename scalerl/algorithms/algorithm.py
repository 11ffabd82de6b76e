"""Algorithm: build from a config, train, evaluate, act, save and restore."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.algorithms import algorithm_checkpoints as checkpoints
from scalerl.algorithms import multi_agent
from scalerl.algorithms.acting import (
    check_observation,
    check_observation_batch,
    module_actions,
)
from scalerl.algorithms.algorithm_checkpoints import (  # noqa: F401 (re-exported)
    OBS_FILTER_FILE,
    Checkpoint,
    SaveResult,
    read_algorithm_state,
)
from scalerl.algorithms.algorithm_config import AlgorithmConfig
from scalerl.algorithms.component_restore import restore_component
from scalerl.algorithms.evaluation import run_evaluation
from scalerl.algorithms.iteration_options import run_training_steps
from scalerl.algorithms.multi_agent import module_obs_filter, multi_agent_means, multi_agent_spec
from scalerl.callbacks import DRIVER_EVENTS, Callbacks, MetricsLogger
from scalerl.callbacks.runner_config import env_runner_config, merge_metrics, without_callbacks
from scalerl.connectors.env_to_module.mean_std_filter import (
    MeanStdFilter,
    resolve_env_to_module_connector,
)
from scalerl.connectors.env_to_module.multi_agent_filter import MultiAgentMeanStdFilter
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.learner import Learner
from scalerl.core.learner_group import LearnerGroup
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.env.env_runner_group import EnvRunnerGroup
from scalerl.env.multi_agent_env_runner import MultiAgentEnvRunner
from scalerl.env.registry import EnvContext, env_name, get_env_creator
from scalerl.env.runner_state import get_torch_rng, set_torch_rng
from scalerl.utils import checkpoints as ckpt
from scalerl.utils import nested
from scalerl.utils.errors import CheckpointError, ConfigError, EnvError, did_you_mean
from scalerl.utils.metrics import EpisodeStats, KeyedReturns
from scalerl.utils.run_logger import RunLogger


class Algorithm:
    """Base class: subclasses set `config_class`, `learner_class` and `training_step()`."""

    config_class: type[AlgorithmConfig] = AlgorithmConfig
    learner_class: type[Learner] = Learner
    env_runner_class: type[SingleAgentEnvRunner] = SingleAgentEnvRunner
    needs_env_runners = False  # True: cannot run with `num_env_runners=0` (APEX-DQN)

    def __init__(self, config: AlgorithmConfig):
        self.config = config
        self.env_creator = get_env_creator(config.env)
        self.agent_to_module: dict = {}  # multi-agent: the mapping seen at build
        runner_class = self.env_runner_class
        if config.is_multi_agent:
            env = self._make_env()
            self.module_spec, self.agent_space_table, self.agent_to_module = multi_agent_spec(
                config, env
            )
            # RLlib's `env_to_module_connector=lambda env: MeanStdFilter()`: one per module.
            spaces = (getattr(env, "observation_space", None), getattr(env, "action_space", None))
            self._resolve_env_to_module_connector(env, spaces)
            env.close()
            runner_class = MultiAgentEnvRunner
        else:
            obs_space, act_space = self._env_spaces()
            self.module_spec = config.get_rl_module_spec(obs_space, act_space)
        # The driver's callbacks; each EnvRunner makes its own (`env_runner_config`).
        self.callbacks = Callbacks(
            config.callbacks_class,
            {e: getattr(config, f"callbacks_{e}") for e in DRIVER_EVENTS},
        )
        # Custom metrics, reduced into every result; the EnvRunners' under `env_runners`.
        self.metrics = MetricsLogger()
        # One learner per module (a single-agent run: `default_policy`), here or in Ray.
        self.learner_group = LearnerGroup(
            without_callbacks(config),
            self.learner_class,
            self.module_spec,
            config.policies_to_train if config.is_multi_agent else None,
        )
        self.env_runner_group = EnvRunnerGroup(
            env_runner_config(config, config.num_env_runners),
            self.env_creator,
            self.module_spec,
            config.num_env_runners,
            runner_class,
        )
        self.env_runner_group.on_recreated = self._env_runners_recreated
        self.env_runner_group.sync_weights(self.runner_weights())
        self.eval_env_runner_group: EnvRunnerGroup | None = None
        self.episode_stats = EpisodeStats(config.metrics_num_episodes_for_smoothing)
        self.agent_returns = KeyedReturns(config.metrics_num_episodes_for_smoothing)
        self.module_returns = KeyedReturns(config.metrics_num_episodes_for_smoothing)
        self.iteration = 0
        self.num_env_steps_sampled_lifetime = 0
        self.num_episodes_lifetime = 0
        self.num_nonfinite_dropped_lifetime = 0  # config.environment(on_nonfinite="drop")
        self.num_sub_env_restarts_lifetime = 0  # envs recreated (restart_failed_sub_environments)
        self.time_total_s = 0.0
        self._timers: dict[str, float] = {}
        # The run directory: created at the first train(), closed by stop().
        self.run_logger = RunLogger(
            config.logger_config, f"{type(self).__name__}_{env_name(config.env)}"
        )
        self._stopped = False

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        """A fresh instance of this algorithm's config class, with its defaults (as in RLlib)."""
        return cls.config_class()

    def _env_spaces(self) -> tuple[gym.Space, gym.Space]:
        cfg = self.config
        if cfg.observation_space is not None and cfg.action_space is not None:
            self._resolve_env_to_module_connector(None, (cfg.observation_space, cfg.action_space))
            return cfg.observation_space, cfg.action_space
        env = self._make_env()
        spaces = (
            cfg.observation_space or env.observation_space,
            cfg.action_space or env.action_space,
        )
        self._resolve_env_to_module_connector(env, spaces)
        env.close()
        return spaces

    def _make_env(self) -> Any:
        cfg = self.config
        try:
            return self.env_creator(EnvContext(cfg.env_config))
        except ConfigError:
            raise
        except Exception as e:
            raise EnvError(
                f"Could not create env `{env_name(cfg.env)}` with env_config={cfg.env_config!r}: "
                f"{type(e).__name__}: {e}"
            ) from e

    def _resolve_env_to_module_connector(self, env: Any, spaces: tuple) -> None:
        """Turn RLlib's `env_to_module_connector=lambda env: MeanStdFilter()` into the
        JSON-able `observation_filter` setting (this algorithm's own config copy)."""
        cfg = self.config
        if cfg.env_to_module_connector is not None:
            custom = cfg.rl_module_spec is not None and cfg.rl_module_spec.module_class is not None
            cfg.observation_filter = resolve_env_to_module_connector(
                cfg.env_to_module_connector, env, spaces, custom_module=custom
            )
            cfg.env_to_module_connector = None

    # -- training ---------------------------------------------------------------------------
    def training_step(self) -> dict[str, Any]:
        """One iteration's sampling and learning; each algorithm implements it.

        Returns:
            The iteration's results, e.g. {"learners": {module_id: metrics}}; `train()` adds
            the env-runner, timer and evaluation results.
        """
        raise NotImplementedError

    def train(self) -> dict[str, Any]:
        """Run one training iteration and return RLlib's result dict."""
        if self._stopped:
            raise RuntimeError("This algorithm was stopped; build a new one to train again.")
        start = time.perf_counter()
        self._timers = {}
        self._sampled_this_iter: dict[str, Any] = {
            "steps": 0,
            "episodes": 0,
            "env_restarts": 0,
            "dropped": 0,
        }
        result = run_training_steps(self)  # min_time_s_per_iteration: repeated
        self.iteration += 1
        cfg = self.config
        if cfg.evaluation_interval and self.iteration % cfg.evaluation_interval == 0:
            with self._timer("evaluation_iteration"):
                result["evaluation"] = self.evaluate()
        elapsed = time.perf_counter() - start
        self.time_total_s += elapsed
        env_runners = {
            **self.episode_stats.summary(),
            **self._multi_agent_means(self.agent_returns, self.module_returns),
            "num_episodes": self._sampled_this_iter["episodes"],
            "num_env_steps_sampled": self._sampled_this_iter["steps"],
            "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
            "num_episodes_lifetime": self.num_episodes_lifetime,
            "num_nonfinite_dropped": self._sampled_this_iter["dropped"],
            "num_nonfinite_dropped_lifetime": self.num_nonfinite_dropped_lifetime,
            "num_sub_env_restarts": self._sampled_this_iter["env_restarts"],
            "num_sub_env_restarts_lifetime": self.num_sub_env_restarts_lifetime,
        }
        result.update(
            env_runners=env_runners,
            env_runner_group=self.env_runner_group.metrics(),
            timers={**self._timers, "training_iteration": elapsed},
            training_iteration=self.iteration,
            num_env_steps_sampled_lifetime=self.num_env_steps_sampled_lifetime,
            time_this_iter_s=elapsed,
            time_total_s=self.time_total_s,
            done=False,
        )
        merge_metrics(result, self.metrics.reduce())  # custom metrics (`algo.metrics.log_value`)
        self.callbacks.call(
            "on_train_result", algorithm=self, metrics_logger=self.metrics, result=result
        )
        self.run_logger.log(result, lambda: self.config.to_dict(mapping_table=self.agent_to_module))
        return result

    @property
    def logdir(self) -> str | None:
        """The run directory `train()` writes (RLlib's name); None before the first
        `train()` or with `logger_config={"type": None}`."""
        return None if self.run_logger.logdir is None else str(self.run_logger.logdir)

    @property
    def training_iteration(self) -> int:
        """Iterations trained so far (RLlib's name; `result["training_iteration"]`)."""
        return self.iteration

    def record_sampling(self, metrics: list[dict]) -> None:
        """Fold EnvRunner metrics into the smoothed episode stats and the counters."""
        for m in metrics:
            self.episode_stats.add(m["episode_returns"], m["episode_lens"])
            self.agent_returns.add(m.get("agent_episode_returns", {}))
            self.module_returns.add(m.get("module_episode_returns", {}))
            self.num_env_steps_sampled_lifetime += m["num_env_steps"]
            self.num_episodes_lifetime += len(m["episode_returns"])
            self._sampled_this_iter["steps"] += m["num_env_steps"]
            self._sampled_this_iter["episodes"] += len(m["episode_returns"])
            self._sampled_this_iter["dropped"] += m.get("num_nonfinite_dropped", 0)
            self.num_nonfinite_dropped_lifetime += m.get("num_nonfinite_dropped", 0)
            self._sampled_this_iter["env_restarts"] += m.get("num_sub_env_restarts", 0)
            self.num_sub_env_restarts_lifetime += m.get("num_sub_env_restarts", 0)
            if "metrics_logger" in m:  # what the runner's callbacks logged
                self.metrics.merge(m["metrics_logger"], prefix=("env_runners",))

    def _env_runners_recreated(self, group: EnvRunnerGroup, indices: list[int]) -> None:
        self.callbacks.call(
            "on_env_runners_recreated",
            algorithm=self,
            env_runner_group=group,
            env_runner_indices=indices,
            is_evaluation=group is self.eval_env_runner_group,
        )

    def get_env_runner_state(self) -> dict:
        """The training EnvRunners' sampling state (JSON): RNGs and fault counters."""
        return {
            **self.env_runner_group.get_state(),
            "num_sub_env_restarts_lifetime": self.num_sub_env_restarts_lifetime,
            "num_nonfinite_dropped_lifetime": self.num_nonfinite_dropped_lifetime,
            "driver_torch_rng": get_torch_rng(),  # the local learner's (e.g. SAC's noise)
        }

    def set_env_runner_state(self, view: ckpt.CheckpointView, name: str) -> None:
        """Load `get_env_runner_state()` from file `name` of a verified checkpoint view;
        checkpoints written before it was stored have none (runners start from seeds)."""
        if not view.has(name):
            return
        state = view.read_json(name, "EnvRunner state")
        try:
            self.num_sub_env_restarts_lifetime = int(state.get("num_sub_env_restarts_lifetime", 0))
            self.num_nonfinite_dropped_lifetime = int(
                state.get("num_nonfinite_dropped_lifetime", 0)
            )
            self.env_runner_group.set_state(state)
            if "driver_torch_rng" in state:
                set_torch_rng(state["driver_torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"`{view.path / name}` does not fit this algorithm's EnvRunners ({e})."
            ) from None

    @contextlib.contextmanager
    def _timer(self, name: str):
        start = time.perf_counter()
        yield
        self._timers[name] = self._timers.get(name, 0.0) + time.perf_counter() - start

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Run `evaluation_duration` episodes (or timesteps), explore=False unless the
        evaluation config says otherwise. Returns {"env_runners": {...}}."""
        self.callbacks.call("on_evaluate_start", algorithm=self, metrics_logger=self.metrics)
        evaluation = run_evaluation(self)
        self.callbacks.call(
            "on_evaluate_end",
            algorithm=self,
            metrics_logger=self.metrics,
            evaluation_metrics=evaluation,
        )
        return evaluation

    # -- acting -----------------------------------------------------------------------------
    @property
    def obs_filter(self) -> MeanStdFilter | MultiAgentMeanStdFilter | None:
        """The central observation filter (merged over all EnvRunners; multi-agent: one
        per module), or None."""
        return self.env_runner_group.obs_filter

    def get_module(self, module_id: str = DEFAULT_MODULE_ID) -> RLModule:
        """The learner's RLModule `module_id` (the only one, or any one of a multi-agent run).

        Raises:
            ValueError: If there is no module `module_id`; the message lists the ids.
        """
        modules = self.learner_group.module
        if module_id == DEFAULT_MODULE_ID and len(modules) == 1:
            module_id = modules.keys()[0]
        if module_id not in modules:
            ids = modules.keys()
            raise ValueError(
                f"No module `{module_id}`.{did_you_mean(module_id, ids)} Modules: {ids}."
            )
        return modules[module_id]

    def compute_actions(
        self,
        observations: Any,
        state: dict[str, Any] | None = None,
        *,
        prev_action: Any = None,
        prev_reward: Any = None,
        explore: bool = False,
        policy_id: str = DEFAULT_MODULE_ID,
    ) -> Any:
        """Actions for a batch of observations (first axis = batch; for Dict/Tuple spaces a
        dict/tuple of batched arrays), or for a dict {key: observation} (returns
        {key: action}).

        A recurrent module takes `state` (batched; None starts from its initial state) and,
        if it uses them, `prev_action` / `prev_reward` (None = zeros); with `state` given the
        result is `(actions, state_out, {})`.
        """
        module = self.get_module(policy_id)
        space = module.observation_space
        keyed = isinstance(observations, dict) and not (
            isinstance(space, gym.spaces.Dict) and set(observations) == set(space.spaces)
        )
        if keyed:
            if state is not None:
                raise ValueError("Pass a batch (not a dict of observations) with `state`.")
            keys = list(observations)
            batch = nested.stack([check_observation(observations[k], space) for k in keys])
            actions = self.compute_actions(batch, explore=explore, policy_id=policy_id)
            return {k: nested.index(actions, i) for i, k in enumerate(keys)}
        observations = check_observation_batch(observations, space)
        obs_filter = self.obs_filter
        if self.config.is_multi_agent:  # the policy's module's own
            obs_filter = module_obs_filter(obs_filter, self.learner_group.module_ids, policy_id)
        if obs_filter is not None:  # frozen: acting must not move the statistics
            observations = obs_filter(observations, update=False)
        cfg = self.config
        return module_actions(
            module,
            observations,
            state,
            prev_action,
            prev_reward,
            explore=explore,
            normalize_actions=cfg.normalize_actions,
            clip_actions=cfg.clip_actions,
        )

    def compute_single_action(
        self,
        observation: Any = None,
        state: dict[str, Any] | None = None,
        *,
        prev_action: Any = None,
        prev_reward: float | None = None,
        explore: bool = False,
        policy_id: str = DEFAULT_MODULE_ID,
    ) -> Any:
        """The action for one observation; deterministic (greedy/mean) unless `explore=True`.

        The observation may be an array, a list or a Python number (converted to the space's
        dtype); it must fit the module's observation space (shape, dtype, range, Dict keys,
        no NaN/inf) or a ValueError says what was expected.

        Recurrent modules: pass `state` (start with `algo.get_module().get_initial_state()`)
        and get `(action, state_out, extra)` back; feed `state_out` in at the next step, and
        `prev_action` / `prev_reward` if the module uses them. Without `state` every call
        starts from the initial state and returns only the action.
        """
        space = self.get_module(policy_id).observation_space
        observation = check_observation(observation, space)

        def batched(x: Any) -> Any:
            return nested.map_structure(lambda v: np.asarray(v)[None], x)

        def single(a: np.ndarray) -> Any:
            return a[0].item() if np.ndim(a[0]) == 0 else a[0]

        out = self.compute_actions(
            batched(observation),
            None if state is None else batched(state),
            prev_action=None if prev_action is None else batched(prev_action),
            prev_reward=None if prev_reward is None else [prev_reward],
            explore=explore,
            policy_id=policy_id,
        )
        if state is None:
            return nested.map_structure(single, out)
        actions, state_out, extra = out
        return nested.map_structure(single, actions), {k: v[0] for k, v in state_out.items()}, extra

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self) -> dict[str, dict[str, np.ndarray]]:
        """Module id -> that module's weights as numpy arrays (`default_policy` if single-agent)."""
        return self.learner_group.get_weights()

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        """Load weights keyed by module id into the learners and sync them to the EnvRunners."""
        self.learner_group.set_weights(weights)
        self.env_runner_group.sync_weights(self.runner_weights())

    def runner_weights(
        self, weights: dict[str, dict[str, Any]] | None = None, inference_only: bool = False
    ) -> dict[str, Any]:
        """`weights` keyed by module id (default: the learners' current ones) in the form
        the EnvRunners take: keyed by module id (multi-agent) or the one module's."""
        if weights is None:
            weights = self.learner_group.get_weights(inference_only=inference_only)
        return weights if self.config.is_multi_agent else weights[DEFAULT_MODULE_ID]

    # -- multi-agent (multi_agent.py) -------------------------------------------------------
    def _multi_agent_means(self, agents: KeyedReturns, modules: KeyedReturns) -> dict:
        return multi_agent_means(agents, modules) if self.config.is_multi_agent else {}

    def add_module(
        self,
        module_id: str,
        module_spec: RLModuleSpec | None = None,
        *,
        config_overrides: dict | None = None,
        new_agent_to_module_mapping_fn: Any = None,
        new_should_module_be_updated: Any = None,
    ) -> None:
        """Add a module to a running multi-agent algorithm (RLlib's `Algorithm.add_module`).

        Its spaces come from `module_spec` or from the agents the new mapping sends to it;
        `new_should_module_be_updated` is the new `policies_to_train` (default: the old
        ones plus this module). EnvRunners start fresh episodes with the new mapping.
        """
        multi_agent.add_module(
            self,
            module_id,
            module_spec,
            config_overrides=config_overrides,
            new_agent_to_module_mapping_fn=new_agent_to_module_mapping_fn,
            new_should_module_be_updated=new_should_module_be_updated,
        )

    def remove_module(
        self,
        module_id: str,
        *,
        new_agent_to_module_mapping_fn: Any = None,
        new_should_module_be_updated: Any = None,
    ) -> None:
        """Remove a module (RLlib's `Algorithm.remove_module`); the new mapping must not
        send any agent to it."""
        multi_agent.remove_module(
            self,
            module_id,
            new_agent_to_module_mapping_fn=new_agent_to_module_mapping_fn,
            new_should_module_be_updated=new_should_module_be_updated,
        )

    # -- checkpoints (algorithm_checkpoints.py) ---------------------------------------------
    def save(self, checkpoint_dir: str | Path | None = None) -> SaveResult:
        """Write a checkpoint (default: `<logdir>/checkpoint_<iteration>`, or under
        `$SCALERL_RESULTS_DIR` before any `train()`); returns `.checkpoint.path`."""
        path = self.save_to_path(checkpoint_dir)
        return SaveResult(Checkpoint(path), {"training_iteration": self.iteration})

    def save_to_path(self, path: str | Path | None = None) -> str:
        """Write a checkpoint to directory `path` and return its path.

        Files in `path` that the previous checkpoint there did not write are kept; until
        the new checkpoint is complete the old one stays loadable (see `utils.checkpoints`).
        """
        return checkpoints.save_algorithm(self, path)

    def restore_from_path(
        self,
        path: Any,
        module_ids: list[str] | None = None,
        *,
        component: str | None = None,
        allow_unverified: bool = False,
    ) -> None:
        """Load weights, optimizer state and counters from a checkpoint of this algorithm.

        `module_ids` (multi-agent): restore only those modules' weights and optimizer
        state, e.g. a trained opponent into a new league; counters stay as they are.
        `component` (RLlib's): load only that part from `path`, so far the RLModule
        weights: `"learner_group/learner/rl_module/<module_id>"` (see
        `component_restore.py`). `allow_unverified`: accept a checkpoint written before
        manifests (see `utils.checkpoints.open_checkpoint`).
        """
        if component is not None:
            restore_component(self, path, component, allow_unverified)
            return
        checkpoints.restore_algorithm(self, path, module_ids, allow_unverified)
        self.callbacks.call("on_checkpoint_loaded", algorithm=self)

    def restore(self, checkpoint_path: Any) -> None:
        """Restore from a checkpoint directory: RLlib's older name for `restore_from_path`."""
        self.restore_from_path(checkpoint_path)

    @classmethod
    def from_checkpoint(
        cls,
        path: Any,
        config_overrides: dict | None = None,
        *,
        trusted: tuple | list = (),
        allow_unverified: bool = False,
    ) -> Any:
        """Build the algorithm stored in `path` (a str, a Path, or `save()`'s result).

        Args:
            path: The checkpoint directory.
            config_overrides: Settings to change before building, e.g.
                `{"num_env_runners": 0}` to evaluate a checkpoint trained on Ray without
                starting Ray, or `{"env": MyEnv}` to give the env yourself.
            trusted: Classes and functions the checkpoint may name (a custom env or
                RLModule class, a policy mapping function); scalerl's own, and those
                registered with `scalerl.register_trusted` or `register_env`, need no
                listing. Nothing else is imported or called.
            allow_unverified: Load a checkpoint written before manifests (older scalerl),
                which cannot be verified. Only for checkpoints you trust to be intact.
        """
        return checkpoints.build_from_checkpoint(path, config_overrides, trusted, allow_unverified)

    def save_extra_state(self, directory: Path) -> None:
        """Write what a subclass keeps beyond learner, filter and counters (e.g. a replay
        buffer) into the checkpoint being written; its files get checksums too."""

    def restore_extra_state(self, view: ckpt.CheckpointView) -> None:
        """Read back what `save_extra_state` wrote, through the checkpoint's verified view
        (only files its manifest lists, each checked against its digest)."""

    # -- shutdown ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Release envs and Ray actors. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self.run_logger.close()
        self.env_runner_group.stop()
        self.learner_group.stop()
        if self.eval_env_runner_group is not None:
            self.eval_env_runner_group.stop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
