"""Algorithm: build from a config, train, evaluate, act, save and restore."""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalerl.algorithms.acting import obs_to_tensors, recurrent_batch
from scalerl.algorithms.algorithm_config import AlgorithmConfig
from scalerl.algorithms.multi_agent_config import multi_rl_module_spec
from scalerl.connectors.env_to_module.mean_std_filter import (
    MeanStdFilter,
    resolve_env_to_module_connector,
)
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.learner import Learner
from scalerl.core.learner_group import LearnerGroup
from scalerl.core.multi_learner_group import MultiLearnerGroup
from scalerl.core.rl_module import Columns, RLModule
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.env.env_runner import SingleAgentEnvRunner, to_env_actions
from scalerl.env.env_runner_group import EnvRunnerGroup
from scalerl.env.multi_agent_env_runner import MultiAgentEnvRunner, agent_spaces
from scalerl.env.registry import EnvContext, env_name, get_env_creator
from scalerl.utils import checkpoints as ckpt
from scalerl.utils import nested
from scalerl.utils.errors import CheckpointError, ConfigError, EnvError, did_you_mean
from scalerl.utils.metrics import EpisodeStats, KeyedReturns

CHECKPOINT_FORMAT = "scalerl-algorithm"
CHECKPOINT_VERSION = 1
OBS_FILTER_FILE = "observation_filter.json"


@dataclass
class Checkpoint:
    """Where a checkpoint lives (RLlib/Ray Train's `Checkpoint`)."""

    path: str

    def __fspath__(self) -> str:
        return self.path


@dataclass
class SaveResult:
    """What `Algorithm.save()` returns: `.checkpoint.path` is the checkpoint directory."""

    checkpoint: Checkpoint
    metrics: dict = field(default_factory=dict)

    def __fspath__(self) -> str:
        return self.checkpoint.path


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
            self.module_spec = self._multi_agent_spec()
            self.learner_group = MultiLearnerGroup(
                config, self.learner_class, self.module_spec, config.policies_to_train
            )
            runner_class = MultiAgentEnvRunner
        else:
            obs_space, act_space = self._env_spaces()
            self.module_spec = config.get_rl_module_spec(obs_space, act_space)
            self.learner_group = LearnerGroup(config, self.learner_class, self.module_spec)
        self.env_runner_group = EnvRunnerGroup(
            config, self.env_creator, self.module_spec, config.num_env_runners, runner_class
        )
        self.env_runner_group.sync_weights(self.learner_group.get_weights())
        self.eval_env_runner_group: EnvRunnerGroup | None = None
        self.episode_stats = EpisodeStats(config.metrics_num_episodes_for_smoothing)
        self.agent_returns = KeyedReturns(config.metrics_num_episodes_for_smoothing)
        self.module_returns = KeyedReturns(config.metrics_num_episodes_for_smoothing)
        self.iteration = 0
        self.num_env_steps_sampled_lifetime = 0
        self.num_episodes_lifetime = 0
        self.time_total_s = 0.0
        self._timers: dict[str, float] = {}
        self._stopped = False

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
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

    def _multi_agent_spec(self) -> MultiRLModuleSpec:
        """One module spec per policy, with the spaces of the env's agents mapped to it."""
        cfg = self.config
        env = self._make_env()
        agents = list(getattr(env, "possible_agents", None) or [])
        if not agents:
            agents = list(env.reset(seed=cfg.seed)[0])
        spaces = {aid: agent_spaces(env, aid) for aid in agents}
        env.close()
        fn = cfg.get_policy_mapping_fn()
        self.agent_to_module = {aid: fn(aid, None) for aid in agents}
        return multi_rl_module_spec(cfg, spaces)

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
            cfg.observation_filter = resolve_env_to_module_connector(
                cfg.env_to_module_connector, env, spaces
            )
            cfg.env_to_module_connector = None

    # -- training ---------------------------------------------------------------------------
    def training_step(self) -> dict[str, Any]:
        raise NotImplementedError

    def train(self) -> dict[str, Any]:
        """Run one training iteration and return RLlib's result dict."""
        if self._stopped:
            raise RuntimeError("This algorithm was stopped; build a new one to train again.")
        start = time.perf_counter()
        self._timers = {}
        self._sampled_this_iter: dict[str, Any] = {"steps": 0, "episodes": 0}
        result = self.training_step()
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
        }
        result.update(
            env_runners=env_runners,
            timers={**self._timers, "training_iteration": elapsed},
            training_iteration=self.iteration,
            num_env_steps_sampled_lifetime=self.num_env_steps_sampled_lifetime,
            time_this_iter_s=elapsed,
            time_total_s=self.time_total_s,
            done=False,
        )
        return result

    def _multi_agent_means(self, agents: KeyedReturns, modules: KeyedReturns) -> dict:
        if not self.config.is_multi_agent:
            return {}
        return {
            "agent_episode_returns_mean": agents.means(),
            "module_episode_returns_mean": modules.means(),
        }

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

    @contextlib.contextmanager
    def _timer(self, name: str):
        start = time.perf_counter()
        yield
        self._timers[name] = self._timers.get(name, 0.0) + time.perf_counter() - start

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Run `evaluation_duration` episodes (or timesteps), explore=False unless the
        evaluation config says otherwise. Returns {"env_runners": {...}}."""
        cfg = self.config
        overrides = dict(cfg.evaluation_config or {})
        if self.eval_env_runner_group is None:
            eval_cfg = cfg.copy().update_from_dict(overrides)
            eval_cfg.observation_filter = cfg.observation_filter  # the module's input
            self.eval_env_runner_group = EnvRunnerGroup(
                eval_cfg,
                get_env_creator(eval_cfg.env),
                self.module_spec,
                cfg.evaluation_num_env_runners,
                MultiAgentEnvRunner if cfg.is_multi_agent else SingleAgentEnvRunner,
            )
        self.eval_env_runner_group.sync_weights(
            self.learner_group.get_weights(), obs_filter=self.obs_filter
        )
        episodes = cfg.evaluation_duration if cfg.evaluation_duration_unit == "episodes" else None
        steps = cfg.evaluation_duration if cfg.evaluation_duration_unit == "timesteps" else None
        parts = self.eval_env_runner_group.sample_episodes(
            episodes, steps, explore=bool(overrides.get("explore", False))
        )
        stats = EpisodeStats(window=10**9)
        agents, modules = KeyedReturns(10**9), KeyedReturns(10**9)
        for m in parts:
            stats.add(m["episode_returns"], m["episode_lens"])
            agents.add(m.get("agent_episode_returns", {}))
            modules.add(m.get("module_episode_returns", {}))
        return {
            "env_runners": {
                **stats.summary(),
                **self._multi_agent_means(agents, modules),
                "num_episodes": len(stats.returns),
                "num_env_steps_sampled": sum(m["num_env_steps"] for m in parts),
                "episode_returns": list(stats.returns),
            }
        }

    # -- acting -----------------------------------------------------------------------------
    @property
    def obs_filter(self) -> MeanStdFilter | None:
        """The central observation filter (merged over all EnvRunners), or None."""
        return self.env_runner_group.obs_filter

    def get_module(self, module_id: str = DEFAULT_MODULE_ID) -> RLModule:
        if self.config.is_multi_agent:
            learners = self.learner_group.learners
            if module_id == DEFAULT_MODULE_ID and len(learners) == 1:
                module_id = next(iter(learners))
            if module_id not in learners:
                raise ValueError(
                    f"No module `{module_id}`.{did_you_mean(module_id, list(learners))}"
                    f" Modules: {list(learners)}."
                )
            return learners[module_id].module
        if module_id != DEFAULT_MODULE_ID:
            raise ValueError(
                f"No module `{module_id}`.{did_you_mean(module_id, [DEFAULT_MODULE_ID])}"
                f" Modules: ['{DEFAULT_MODULE_ID}']."
            )
        return self.learner_group.module

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
            batch = nested.stack([observations[k] for k in keys])
            actions = self.compute_actions(batch, explore=explore, policy_id=policy_id)
            return {k: nested.index(actions, i) for i, k in enumerate(keys)}
        if self.obs_filter is not None:  # frozen: acting must not move the statistics
            observations = self.obs_filter(observations, update=False)
        device = next(module.parameters()).device
        batch = {Columns.OBS: obs_to_tensors(observations, space, device)}
        stateful = module.is_stateful()
        if stateful:
            batch = recurrent_batch(module, batch, state, prev_action, prev_reward)
        with torch.no_grad():
            if explore:
                out = module.forward_exploration(batch)
                dist_cls = module.get_exploration_action_dist_cls()
            else:
                out = module.forward_inference(batch)
                dist_cls = module.get_inference_action_dist_cls()
            actions = out.get(Columns.ACTIONS)
            if actions is None:
                inputs = out[Columns.ACTION_DIST_INPUTS]
                dist = dist_cls(inputs[:, 0] if stateful else inputs)
                actions = dist.sample() if explore else dist.deterministic_sample()
            elif stateful:
                actions = nested.map_structure(lambda a: a[:, 0], actions)
        cfg = self.config
        actions = nested.map_structure(lambda a: a.cpu().numpy(), actions)
        actions = to_env_actions(
            actions, module.action_space, cfg.normalize_actions, cfg.clip_actions
        )
        if state is None:
            return actions
        return actions, {k: v.cpu().numpy() for k, v in out[Columns.STATE_OUT].items()}, {}

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

        Recurrent modules: pass `state` (start with `algo.get_module().get_initial_state()`)
        and get `(action, state_out, extra)` back; feed `state_out` in at the next step, and
        `prev_action` / `prev_reward` if the module uses them. Without `state` every call
        starts from the initial state and returns only the action.
        """
        self.get_module(policy_id)

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
        if self.config.is_multi_agent:
            return self.learner_group.get_weights()
        return {DEFAULT_MODULE_ID: self.learner_group.get_weights()}

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        if self.config.is_multi_agent:
            self.learner_group.set_weights(weights)
        else:
            self.learner_group.set_weights(weights[DEFAULT_MODULE_ID])
        self.env_runner_group.sync_weights(self.learner_group.get_weights())

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, checkpoint_dir: str | Path | None = None) -> SaveResult:
        """Write a checkpoint (default: ~/scalerl_results/...); returns `.checkpoint.path`."""
        path = self.save_to_path(checkpoint_dir)
        return SaveResult(Checkpoint(path), {"training_iteration": self.iteration})

    def save_to_path(self, path: str | Path | None = None) -> str:
        if path is None:
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            run = f"{type(self).__name__}_{env_name(self.config.env)}_{stamp}"
            path = (
                Path.home()
                / "scalerl_results"
                / run.replace("/", "_")
                / (f"checkpoint_{self.iteration:06d}")
            )
        target = ckpt.as_path(path)
        with ckpt.atomic_dir(target) as tmp:
            if self.config.is_multi_agent:
                self.learner_group.save(tmp / "learner_group")
            else:
                self.learner_group.save(tmp / "learner_group", DEFAULT_MODULE_ID)
            if self.obs_filter is not None:
                ckpt.write_json(tmp / OBS_FILTER_FILE, self.obs_filter.get_state())
            self.save_extra_state(tmp)
            files = {
                str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()
            }
            ckpt.write_json(
                tmp / ckpt.ALGO_FILE,
                {
                    "format": CHECKPOINT_FORMAT,
                    "version": CHECKPOINT_VERSION,
                    "algo_class": type(self).__name__,
                    "config": self.config.to_dict(mapping_table=self.agent_to_module),
                    "counters": {
                        "training_iteration": self.iteration,
                        "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                        "num_episodes_lifetime": self.num_episodes_lifetime,
                        "time_total_s": self.time_total_s,
                    },
                    "episode_stats": self.episode_stats.get_state(),
                    "agent_returns": self.agent_returns.get_state(),
                    "module_returns": self.module_returns.get_state(),
                    "files": files,
                },
            )
        return str(target)

    def restore_from_path(self, path: Any) -> None:
        """Load weights, optimizer state and counters from a checkpoint of this algorithm."""
        path = ckpt.as_path(path)
        state = read_algorithm_state(path)
        if state["algo_class"] != type(self).__name__:
            raise CheckpointError(
                f"`{path}` is a {state['algo_class']} checkpoint; it cannot be "
                f"restored into {type(self).__name__}."
            )
        if self.config.is_multi_agent:
            self.learner_group.load(path / "learner_group")
        else:
            self.learner_group.load(path / "learner_group", DEFAULT_MODULE_ID)
        counters = state["counters"]
        self.iteration = counters["training_iteration"]
        self.num_env_steps_sampled_lifetime = counters["num_env_steps_sampled_lifetime"]
        self.num_episodes_lifetime = counters["num_episodes_lifetime"]
        self.time_total_s = counters["time_total_s"]
        self.episode_stats.set_state(state["episode_stats"])
        self.agent_returns.set_state(state.get("agent_returns", []))
        self.module_returns.set_state(state.get("module_returns", []))
        self._restore_obs_filter(path / OBS_FILTER_FILE)
        self.restore_extra_state(path)
        self.env_runner_group.sync_weights(self.learner_group.get_weights())

    def save_extra_state(self, directory: Path) -> None:
        """Write what a subclass keeps beyond learner, filter and counters (e.g. a replay
        buffer) into the checkpoint being written; its files get checksums too."""

    def restore_extra_state(self, directory: Path) -> None:
        """Read back what `save_extra_state` wrote (checksums are already verified)."""

    def _restore_obs_filter(self, file: Path) -> None:
        """Load the filter statistics; checkpoints written without a filter have no file
        (the statistics then start fresh)."""
        if self.obs_filter is None or not file.exists():
            return
        state = ckpt.read_json(file, "Observation filter")
        try:
            self.obs_filter.set_state(state)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"`{file}` does not fit this algorithm's observation filter: {e}."
            ) from None

    def restore(self, checkpoint_path: Any) -> None:
        self.restore_from_path(checkpoint_path)

    @classmethod
    def from_checkpoint(cls, path: Any, config_overrides: dict | None = None) -> Algorithm:
        """Build the algorithm stored in `path` (a str, a Path, or `save()`'s result).

        `config_overrides` changes settings before building, e.g. `{"num_env_runners": 0}`
        to evaluate a checkpoint trained on Ray without starting Ray.
        """
        from scalerl.algorithms.registry import get_algorithm_class

        path = ckpt.as_path(path)
        state = read_algorithm_state(path)
        algo_cls = get_algorithm_class(state["algo_class"])
        config = algo_cls.config_class.from_dict(state["config"])
        config.update_from_dict(config_overrides or {})
        algo = config.build_algo()
        algo.restore_from_path(path)
        return algo

    # -- shutdown ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Release envs and Ray actors. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self.env_runner_group.stop()
        self.learner_group.stop()
        if self.eval_env_runner_group is not None:
            self.eval_env_runner_group.stop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_algorithm_state(path: Path) -> dict:
    """Read and check `algorithm_state.json`, and verify every file's checksum."""
    if not path.exists():
        raise CheckpointError(f"Checkpoint `{path}` does not exist.")
    state = ckpt.read_json(path / ckpt.ALGO_FILE, "Algorithm checkpoint")
    counters = (
        "training_iteration",
        "num_env_steps_sampled_lifetime",
        "num_episodes_lifetime",
        "time_total_s",
    )
    if (
        not isinstance(state, dict)
        or state.get("format") != CHECKPOINT_FORMAT
        or not all(k in state for k in ("algo_class", "config", "counters", "episode_stats"))
        or not isinstance(state["counters"], dict)
        or not all(k in state["counters"] for k in counters)
    ):
        raise CheckpointError(
            f"`{path / ckpt.ALGO_FILE}` is not a valid scalerl algorithm "
            "checkpoint state (wrong format or missing entries)."
        )
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"`{path}` was written by a newer scalerl (format version "
            f"{state['version']}); upgrade scalerl to load it."
        )
    for name, digest in state.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"Checkpoint file `{file}` is missing.")
        if _sha256(file) != digest:
            raise CheckpointError(
                f"Checkpoint file `{file}` is corrupt: its checksum does not "
                "match the one recorded when it was saved."
            )
    return state
