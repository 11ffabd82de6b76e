"""SingleAgentEnvRunner: steps N Gymnasium envs with one batched forward pass per step."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalerl.callbacks.metrics_logger import MetricsLogger
from scalerl.callbacks.runner_events import make_episode_events, with_logged_metrics
from scalerl.connectors.env_to_module.mean_std_filter import build_observation_filter
from scalerl.core.rl_module import Columns, RLModuleSpec
from scalerl.env.checks import (
    MAX_RESETS,
    EnvChecks,
    episode_step,
    finite,
    first_nonfinite,
    nonfinite_rows,
    reset_obs,
    step_api_error,
)
from scalerl.env.env_restarts import RESTARTED, env_step_error, pop_env_restarts, wrap_envs
from scalerl.env.registry import EnvContext, env_name
from scalerl.env.runner_state import get_runner_state, set_runner_state
from scalerl.utils import nested
from scalerl.utils.errors import EnvError
from scalerl.utils.sequences import sequence_starts


def to_env_actions(actions: Any, space: gym.Space, normalize: bool, clip: bool) -> Any:
    """Map module actions to env actions: unsquash [-1, 1] to the Box bounds, or clip.

    Nested (Tuple/Dict) actions are mapped leaf by leaf."""
    if isinstance(space, gym.spaces.Dict):
        return {k: to_env_actions(actions[k], s, normalize, clip) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(to_env_actions(a, s, normalize, clip) for a, s in zip(actions, space.spaces))
    if not isinstance(space, gym.spaces.Box):
        # Discrete, MultiDiscrete, MultiBinary: the space's dtype (torch samples int64).
        return np.asarray(actions).astype(space.dtype, copy=False)
    if normalize and space.is_bounded():
        actions = space.low + (np.clip(actions, -1.0, 1.0) + 1.0) * 0.5 * (space.high - space.low)
    elif clip or normalize:
        actions = np.clip(actions, space.low, space.high)
    return actions.astype(space.dtype, copy=False)


def action_buffer(space: gym.Space, leading: tuple[int, ...]) -> Any:
    """Arrays for module actions (Box leaves as float32, as the distributions sample them)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: action_buffer(s, leading) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(action_buffer(s, leading) for s in space.spaces)
    if isinstance(space, gym.spaces.Box):
        return np.empty((*leading, *space.shape), dtype=np.float32)
    return nested.empty_like_space(space, leading)


def check_obs(obs: Any, space: gym.Space, where: str) -> Any:
    """The observation with the space's dtypes, or an EnvError saying what does not match."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, dict) or set(obs) != set(space.spaces):
            got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
            raise EnvError(f"{where}: expected a dict with keys {sorted(space.spaces)}, got {got}")
        return {k: check_obs(obs[k], s, f"{where}[{k!r}]") for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(obs, (tuple, list)) or len(obs) != len(space.spaces):
            raise EnvError(f"{where}: expected a tuple of {len(space.spaces)}, got {obs!r:.80}")
        return tuple(check_obs(o, s, f"{where}[{i}]") for i, (o, s) in enumerate(zip(obs, space)))
    arr = np.asarray(obs)
    ok = arr.shape == space.shape
    if isinstance(space, gym.spaces.Discrete):
        ok = ok and space.start <= int(arr) < space.start + space.n
    if not ok:
        raise EnvError(
            f"{where}: got shape {arr.shape}, dtype {arr.dtype}, which does not fit {space}"
        )
    return arr.astype(space.dtype, copy=False)


def make_envs(
    config: Any, env_creator: Any, worker_index: int, num_workers: int, multi_agent: bool = False
) -> tuple[list, list, np.random.Generator]:
    """A runner's envs, their reset seeds (`seed` + 10000 x worker + env index, or None) and
    its action-sampling RNG (seeded from `seed` and the worker index). With
    `restart_failed_sub_environments` each env is a `RestartingEnv` (see `env_restarts`)."""
    n, seed = config.num_envs_per_env_runner, config.seed
    contexts = [EnvContext(config.env_config, worker_index, i, num_workers) for i in range(n)]
    envs = [env_creator(c) for c in contexts]
    if config.restart_failed_sub_environments:
        envs = wrap_envs(envs, env_creator, contexts, env_name(config.env), multi_agent)
    seeds = [None] * n if seed is None else [seed + 10_000 * worker_index + i for i in range(n)]
    return envs, seeds, np.random.default_rng(None if seed is None else [seed, worker_index])


class SingleAgentEnvRunner:
    """Collects time-major rollout fragments `[T, num_envs]` from a list of envs.

    Episodes continue across `sample()` calls. For each truncated (not terminated)
    episode end the final observation is kept, so the learner can bootstrap from it.
    """

    def __init__(
        self,
        config: Any,
        env_creator: Any,
        module_spec: RLModuleSpec,
        worker_index: int = 0,
        num_workers: int = 0,
    ):
        if worker_index > 0:
            torch.set_num_threads(1)  # one core per remote runner
        self.config = config
        self.worker_index = worker_index
        self.env_id = env_name(config.env)
        n = config.num_envs_per_env_runner
        self.envs, self._env_seeds, self.rng = make_envs(
            config, env_creator, worker_index, num_workers
        )
        self.module = module_spec.build().eval()
        self.metrics = MetricsLogger()  # what this runner's callbacks log
        self.events = make_episode_events(self, config, worker_index, num_workers)
        self.numpy_exploration_fn = self.module.get_numpy_exploration_fn()
        self.numpy_recurrent_fn = self.module.get_numpy_recurrent_fn()
        self.obs_space = module_spec.observation_space
        self.act_space = module_spec.action_space
        # MeanStdFilter or None. Local mode: the central filter; Ray: this runner's copy.
        self.obs_filter = build_observation_filter(config.observation_filter, self.obs_space)
        self.obs: Any = None  # [N, ...] arrays, nested like the observation space
        self._raw_obs: Any = None  # the same before the observation filter
        # Per-step checks of what the envs return (`env/checks.py`); None: first step only.
        self.checks = (
            EnvChecks(self.obs_space, self.env_id, config.on_nonfinite)
            if config.check_env_steps
            else None
        )
        self.num_steps = 0  # this runner's env steps, for error messages
        self.num_nonfinite_dropped = 0  # since the last sample() (on_nonfinite="drop")
        self.ep_return = np.zeros(n)
        self.ep_len = np.zeros(n, dtype=np.int64)
        # A stateful (recurrent) module: its state, a_{t-1} and r_{t-1} per env.
        self.stateful = self.module.is_stateful()
        if self.stateful:
            self.initial_state = {k: v.numpy() for k, v in self.module.get_initial_state().items()}
            self.max_seq_len = int(self.module.model_config.get("max_seq_len", 20))
            # Replay of overlapping sequences (R2D2) needs the state every `max_seq_len`
            # steps counted from each episode's start, also across fragments.
            self.episode_aligned_states = bool(
                getattr(self.module, "episode_aligned_states", False)
            )
            self.state: dict[str, np.ndarray] = {}
            self.prev_actions = action_buffer(self.act_space, (n,))
            self.prev_rewards = np.zeros(n, dtype=np.float32)
            self.steps_in_sequence = np.zeros(n, dtype=np.int64)
            self._state_out: dict[str, np.ndarray] = {}

    # -- weights ------------------------------------------------------------------
    def set_weights(self, weights: dict[str, Any], obs_filter_state: dict | None = None) -> None:
        """Load module weights and, if given, the central observation-filter statistics."""
        self.module.set_state(weights)
        self.numpy_exploration_fn = self.module.get_numpy_exploration_fn()
        self.numpy_recurrent_fn = self.module.get_numpy_recurrent_fn()
        if obs_filter_state is not None and self.obs_filter is not None:
            self.obs_filter.set_state(obs_filter_state)

    def pop_obs_filter_delta(self) -> dict | None:
        """The filter statistics gathered since the last call (then reset), for merging."""
        if self.obs_filter is None:
            return None
        delta = self.obs_filter.get_delta_state()
        self.obs_filter.reset_delta()
        return delta

    def _filter_obs(self, obs: Any, update: bool) -> Any:
        """Observations as the module sees them: normalized when a filter is configured.
        Statistics are updated only while sampling for training."""
        return obs if self.obs_filter is None else self.obs_filter(obs, update=update)

    # -- state (checkpoints) ---------------------------------------------------------
    def get_state(self) -> dict:
        """The JSON-able sampling state (RNGs, counters): see `runner_state`."""
        return get_runner_state(self)

    def set_state(self, state: dict) -> None:
        """Restore `get_state()`'s result; episodes in progress restart."""
        set_runner_state(self, state)

    # -- sampling -----------------------------------------------------------------
    def _reset_all(self, update_filter: bool = True) -> None:
        if self.events is not None:
            self.events.discard_all()
        first = [self._reset_env(i, s) for i, s in enumerate(self._env_seeds)]
        self._raw_obs = nested.stack(first)
        self.obs = self._filter_obs(self._raw_obs, update_filter)
        self.ep_return[:] = 0.0
        self.ep_len[:] = 0
        self._checked_first_step = False
        if self.stateful:
            n = len(self.envs)
            self.state = {k: np.repeat(v[None], n, axis=0) for k, v in self.initial_state.items()}
            nested.map_structure(lambda a: a.fill(0), self.prev_actions)
            self.prev_rewards[:] = 0.0
            self.steps_in_sequence[:] = 0

    def _where(self, i: int, stepped: int = 0) -> str:
        """Where a step happens, for error messages (`stepped`: 1 once `ep_len` counts it)."""
        return (
            f"at episode step {int(self.ep_len[i]) + 1 - stepped} (sub-env {i} of runner "
            f"{self.worker_index}, the runner's env step {self.num_steps + i + 1 - stepped})"
        )

    def _reset_env(self, i: int, seed: int | None = None, check_finite: bool = True) -> Any:
        """Reset env i and return its checked first observation (with `on_nonfinite="drop"`
        a non-finite one is counted and the env reset again). Without `check_finite` the
        fragment check (`_check_fragment`) finds NaN/inf later, at less cost."""
        c, events = self.checks, self.events
        if events is not None:
            events.create(i)
        for _ in range(MAX_RESETS):
            out = self.envs[i].reset(seed=seed)
            obs = reset_obs(self.env_id, out, i, self.worker_index)
            if (
                c is None
                or obs.__class__ is not np.ndarray
                or obs.shape != c.shape
                or obs.dtype is not c.obs_dtype
            ):
                obs = self._checked_obs(obs, "reset()")
            if c is None or not check_finite or finite(obs):
                if events is not None:
                    events.start(i, obs, out[1])
                return obs
            if not c.drop:
                where = f"(sub-env {i} of runner {self.worker_index})"
                raise c.nonfinite_error("observation", obs, f"from reset() {where}")
            self.num_nonfinite_dropped += 1
            seed = None
        raise EnvError(
            f"Env `{self.env_id}`.reset() returned a non-finite observation {MAX_RESETS} times "
            f"in a row (sub-env {i} of runner {self.worker_index}); fix the env."
        )

    def _checked_obs(self, obs: Any, where: str) -> Any:
        try:
            return check_obs(obs, self.obs_space, "observation")
        except EnvError as e:
            raise EnvError(
                f"Env `{self.env_id}` returned an observation from {where} that does not match "
                f"its observation space {self.obs_space} ({e}). Fix the env's "
                "`observation_space`, or set `config.environment(observation_space=...)`."
            ) from None

    def _act(self, explore: bool) -> tuple[np.ndarray, np.ndarray]:
        """One batched forward pass for all envs: (actions, action_dist_inputs)."""
        actions = None
        if explore and self.numpy_exploration_fn is not None:
            dist_inputs = self.numpy_exploration_fn(self.obs).astype(np.float32, copy=False)
        elif explore and self.numpy_recurrent_fn is not None:
            dist_inputs, self._state_out = self.numpy_recurrent_fn(
                self.obs, self.state, self.prev_actions, self.prev_rewards
            )
            dist_inputs = dist_inputs.astype(np.float32, copy=False)
        else:
            with torch.inference_mode():
                batch = {Columns.OBS: nested.map_structure(torch.from_numpy, self.obs)}
                if self.stateful:
                    batch = self._recurrent_inputs(batch)
                if explore:
                    out = self.module.forward_exploration(batch)
                else:
                    out = self.module.forward_inference(batch)
                # A module that returns actions need not return distribution inputs
                # when acting greedily (training samples need them: see `sample`).
                dist_inputs = out.get(Columns.ACTION_DIST_INPUTS)
                actions = out.get(Columns.ACTIONS)
                if dist_inputs is None and actions is None:
                    raise KeyError(
                        f"{type(self.module).__name__}'s forward pass returned neither "
                        f"`{Columns.ACTIONS}` nor `{Columns.ACTION_DIST_INPUTS}`."
                    )
                if self.stateful:  # drop the time axis of length 1
                    self._state_out = {k: v.numpy() for k, v in out[Columns.STATE_OUT].items()}
                    if dist_inputs is not None:
                        dist_inputs = dist_inputs[:, 0]
                    if actions is not None:
                        actions = nested.map_structure(lambda a: a[:, 0], actions)
                if actions is None and not explore:
                    dist = self.module.get_inference_action_dist_cls()(dist_inputs)
                    actions = dist.deterministic_sample()
            if dist_inputs is not None:
                dist_inputs = dist_inputs.numpy()
            if actions is not None:
                actions = nested.map_structure(lambda a: a.numpy(), actions)
        if actions is None:
            dist_cls = self.module.get_exploration_action_dist_cls()
            actions = dist_cls.sample_numpy(dist_inputs, self.rng)
        return actions, dist_inputs

    def _recurrent_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Add a time axis of 1, the state and the previous action and reward."""
        batch = {Columns.OBS: nested.map_structure(lambda x: x[:, None], batch[Columns.OBS])}
        batch[Columns.STATE_IN] = {k: torch.from_numpy(v) for k, v in self.state.items()}
        batch[Columns.PREV_ACTIONS] = nested.map_structure(
            lambda a: torch.from_numpy(a)[:, None], self.prev_actions
        )
        batch[Columns.PREV_REWARDS] = torch.from_numpy(self.prev_rewards)[:, None]
        return batch

    def _advance_state(self, actions: Any, rewards: np.ndarray, dones: np.ndarray) -> None:
        """After a step: the module's state out becomes the state in; envs whose episode
        ended start the next one from the initial state with a_{t-1} = 0, r_{t-1} = 0."""
        self.state = self._state_out
        nested.assign(self.prev_actions, slice(None), actions)
        self.prev_rewards[:] = rewards
        self.steps_in_sequence += 1
        if dones.any():
            for k, v in self.initial_state.items():
                self.state[k][dones] = v
            nested.map_structure(lambda a: a.__setitem__(dones, 0), self.prev_actions)
            self.prev_rewards[dones] = 0.0
            self.steps_in_sequence[dones] = 0

    def _step_envs(self, actions: np.ndarray, t: int, record: dict | None, finished: list):
        """Step every env; reset the ones that end. Returns (rewards, terminateds, truncateds)."""
        cfg = self.config
        env_actions = to_env_actions(
            actions, self.act_space, cfg.normalize_actions, cfg.clip_actions
        )
        n = len(self.envs)
        rewards = np.empty(n, dtype=np.float32)
        terms = np.zeros(n, dtype=bool)
        truncs = np.zeros(n, dtype=bool)
        flat = isinstance(self.obs, np.ndarray)
        next_obs = nested.map_structure(np.empty_like, self.obs)
        if not isinstance(env_actions, np.ndarray):  # nested: one structure per env
            env_actions = [nested.index(env_actions, i) for i in range(n)]
        checks = self.checks
        check_first = checks is None and not self._checked_first_step
        # NaN/inf: checked here on every step when dropping (and when evaluating); else
        # once per fragment on the recorded arrays (`_check_fragment`), which costs less.
        per_step = checks is not None and (checks.drop or record is None)
        if checks is not None:
            shape, dtype, isfinite = checks.shape, checks.obs_dtype, math.isfinite
            ndarray = np.ndarray
            k0 = len(record[Columns.TRUNC_INDEX]) if record is not None else 0
        dropped = -1  # the env whose step was just dropped (on_nonfinite="drop")
        events = self.events
        for i, env in enumerate(self.envs):
            try:
                out = env.step(env_actions[i])
            except Exception as e:
                raise env_step_error(self.env_id, self.worker_index, i, e) from e
            try:
                obs, r, term, trunc, info = out
                rewards[i] = r
                self.ep_return[i] += r
            except (TypeError, ValueError):
                raise step_api_error(self.env_id, out, self._where(i)) from None
            if checks is not None:  # inline: this runs for every env step (see env/checks.py)
                if not (term is True or term is False) or not (trunc is True or trunc is False):
                    error = checks.flags_error(term, trunc, self._where(i))
                    if error is not None:
                        raise error
                if not flat:
                    obs = checks.check_obs(obs, self._where(i))
                elif obs.__class__ is not ndarray or obs.shape != shape or obs.dtype is not dtype:
                    obs, dtype = checks.flat_obs(obs, self._where(i))
                    checks.obs_dtype = dtype
                if per_step and (not isfinite(r) or ((term or trunc) and not finite(obs))):
                    what, value = ("reward", r) if not isfinite(r) else ("final observation", obs)
                    if not checks.drop:
                        raise checks.nonfinite_error(what, value, self._where(i))
                    # Cut the episode here: bootstrap from the last good observation.
                    dropped, term, trunc = i, False, True
                    rewards[i] = 0.0 if what == "reward" else r
                    obs = nested.index(self._raw_obs, i)
            elif check_first:
                obs = self._checked_obs(obs, "step()")
            if events is not None:  # only with EnvRunner callbacks: see callbacks/episode.py
                if dropped == i or info is RESTARTED:
                    events.discard(i)  # cut short: dropped from the metrics too
                else:
                    action = nested.index(actions, i)
                    events.step(i, obs, action, r, info, terminated=term, truncated=trunc)
            terms[i], truncs[i] = term, trunc
            self.ep_len[i] += 1
            if term or trunc:
                if trunc and not term and record is not None:
                    record[Columns.TRUNC_INDEX].append((t, i))
                    record[Columns.TRUNC_OBS].append(obs)
                if dropped == i:
                    self.num_nonfinite_dropped += 1
                elif info is not RESTARTED:  # an env recreated mid-episode: not reported
                    finished.append((self.ep_return[i], self.ep_len[i]))
                self.ep_return[i], self.ep_len[i] = 0.0, 0
                if checks is None:
                    if events is not None:
                        events.create(i)
                    obs, reset_info = env.reset()
                    if events is not None:
                        events.start(i, obs, reset_info)
                else:
                    obs = self._reset_env(i, check_finite=per_step)
            if flat:
                next_obs[i] = obs
            else:
                nested.assign(next_obs, i, obs)
        if per_step and not checks.batch_finite(next_obs):
            self._nonfinite_obs(next_obs, t, record, k0, truncs)
        self.num_steps += n
        self._checked_first_step = True
        self._raw_obs = next_obs
        self.obs = self._filter_obs(next_obs, update=record is not None)
        return rewards, terms, truncs

    def _nonfinite_obs(
        self, next_obs: Any, t: int, record: dict | None, k0: int, truncs: np.ndarray
    ) -> None:
        """Rows of `next_obs` with NaN/inf (episodes that go on: reset observations are
        checked in `_reset_env`): an EnvError, or with `on_nonfinite="drop"` the step is
        cut as a truncation that bootstraps from the last good observation, the episode
        dropped from the metrics and the env reset."""
        for i in nonfinite_rows(next_obs):
            where = self._where(i, stepped=1)
            if not self.checks.drop:
                value = nested.index(next_obs, i)
                raise self.checks.nonfinite_error("observation", value, where)
            truncs[i] = True
            if record is not None:
                record[Columns.TRUNC_INDEX].append((t, i))
                record[Columns.TRUNC_OBS].append(nested.index(self._raw_obs, i))
            self.num_nonfinite_dropped += 1
            self.ep_return[i], self.ep_len[i] = 0.0, 0
            if self.events is not None:
                self.events.discard(i)
            nested.assign(next_obs, i, self._reset_env(i))
        if record is not None:  # this step's truncations in env order (as `_MemoryRecord`)
            idx, obs = record[Columns.TRUNC_INDEX], record[Columns.TRUNC_OBS]
            order = sorted(range(k0, len(idx)), key=lambda k: idx[k][1])
            idx[k0:], obs[k0:] = [idx[k] for k in order], [obs[k] for k in order]

    def _check_fragment(
        self, obs_buf: Any, rew_buf: np.ndarray, dones: np.ndarray, record: dict, start: tuple
    ) -> None:
        """NaN/inf anywhere in a fragment: an EnvError naming the first step that returned
        one. Observations [t >= 1] were returned by step t - 1 (obs[0] and reset
        observations were checked before), the bootstrap observation by step T - 1."""
        ep0, steps0 = start
        n = len(self.envs)
        found = first_nonfinite(
            rew_buf,
            obs_buf,
            self._raw_obs,
            record[Columns.TRUNC_INDEX],
            record[Columns.TRUNC_OBS],
        )
        if found is None:
            return
        what, t, i, value = found
        where = (
            f"at episode step {episode_step(dones[:, i], t, int(ep0[i]))} (sub-env {i} of "
            f"runner {self.worker_index}, the runner's env step {steps0 + t * n + i + 1})"
        )
        raise self.checks.nonfinite_error(what, value, where)

    def _pop_dropped(self) -> int:
        n, self.num_nonfinite_dropped = self.num_nonfinite_dropped, 0
        return n

    def sample(self, num_timesteps: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """Step each env `num_timesteps` times (default: the rollout fragment length).

        Returns a time-major batch and this call's episode metrics.
        """
        T = num_timesteps or self.config.get_rollout_fragment_length()
        if self.obs is None:
            self._reset_all()
        n = len(self.envs)
        obs_buf = nested.map_structure(lambda o: np.empty((T, *o.shape), o.dtype), self.obs)
        act_buf = action_buffer(self.act_space, (T, n))
        rew_buf = np.empty((T, n), dtype=np.float32)
        term_buf = np.empty((T, n), dtype=bool)
        trunc_buf = np.empty((T, n), dtype=bool)
        dist_buf = None
        record: dict[str, list] = {Columns.TRUNC_INDEX: [], Columns.TRUNC_OBS: []}
        finished: list[tuple[float, int]] = []
        memory = _MemoryRecord(self, T) if self.stateful else None
        start = (self.ep_len.copy(), self.num_steps)  # for `_check_fragment`'s messages
        for t in range(T):
            nested.assign(obs_buf, t, self.obs)
            if memory is not None:
                memory.before_step(t)
            actions, dist_inputs = self._act(explore=self.config.explore)
            if dist_inputs is None:
                raise KeyError(
                    f"{type(self.module).__name__}.forward_exploration returned no "
                    f"`{Columns.ACTION_DIST_INPUTS}`: training needs them to compute the "
                    "behaviour policy's log-probabilities."
                )
            if dist_buf is None:
                dist_buf = np.empty((T, n, dist_inputs.shape[-1]), dtype=np.float32)
            nested.assign(act_buf, t, actions)
            dist_buf[t] = dist_inputs
            rew_buf[t], term_buf[t], trunc_buf[t] = self._step_envs(actions, t, record, finished)
            if memory is not None:
                memory.after_step(
                    actions, self._clip_rewards(rew_buf[t]), term_buf[t], trunc_buf[t]
                )
        if self.checks is not None and not self.checks.drop:
            self._check_fragment(obs_buf, rew_buf, term_buf | trunc_buf, record, start)
        trunc_obs = (
            self._filter_obs(nested.stack(record[Columns.TRUNC_OBS]), update=False)
            if record[Columns.TRUNC_OBS]
            else nested.map_structure(lambda o: np.empty((0, *o.shape[1:]), o.dtype), self.obs)
        )
        trunc_index = np.array(record[Columns.TRUNC_INDEX], dtype=np.int64).reshape(-1, 2)
        batch = {
            Columns.OBS: obs_buf,
            Columns.ACTIONS: act_buf,
            Columns.REWARDS: self._clip_rewards(rew_buf),
            Columns.TERMINATEDS: term_buf,
            Columns.TRUNCATEDS: trunc_buf,
            Columns.ACTION_DIST_INPUTS: dist_buf,
            Columns.BOOTSTRAP_OBS: nested.map_structure(np.copy, self.obs),
            Columns.TRUNC_INDEX: trunc_index,
            Columns.TRUNC_OBS: trunc_obs,
        }
        if memory is not None:
            batch.update(memory.columns())
        return batch, self._episode_metrics(finished, T * n)

    def sample_episodes(
        self,
        num_episodes: int | None = None,
        num_timesteps: int | None = None,
        explore: bool = False,
    ) -> dict:
        """Run until `num_episodes` episodes finish (or `num_timesteps` steps pass); metrics only.

        Starts from fresh episodes so that every reported episode is whole.
        """
        self._reset_all(update_filter=False)
        finished: list[tuple[float, int]] = []
        steps = 0
        while (num_episodes is not None and len(finished) < num_episodes) or (
            num_timesteps is not None and steps < num_timesteps
        ):
            actions, _ = self._act(explore)
            rewards, terms, truncs = self._step_envs(actions, 0, None, finished)
            if self.stateful:
                self._advance_state(actions, self._clip_rewards(rewards), terms | truncs)
            steps += len(self.envs)
        self.obs = None  # the next training sample starts fresh episodes
        if num_episodes is not None:
            finished = finished[:num_episodes]
        return self._episode_metrics(finished, steps)

    def _clip_rewards(self, rewards: np.ndarray) -> np.ndarray:
        clip = self.config.clip_rewards
        if clip is True:
            return np.sign(rewards)
        if clip:
            return np.clip(rewards, -clip, clip)
        return rewards

    def _episode_metrics(self, finished: list[tuple[float, int]], steps: int) -> dict:
        metrics = {
            "episode_returns": [float(r) for r, _ in finished],
            "episode_lens": [int(n) for _, n in finished],
            "num_env_steps": steps,
            "num_sub_env_restarts": pop_env_restarts(self.envs),
            "num_nonfinite_dropped": self._pop_dropped(),
        }
        return with_logged_metrics(self, metrics)

    def stop(self) -> None:
        """Close the runner's envs."""
        for env in self.envs:
            env.close()


class _MemoryRecord:
    """What a fragment of a stateful module adds for the learner (see `utils.sequences`):

    seq_index [S, 2] / state_in [S, ...]: each sequence's first step (t, n) and the state
    there (with a module's `episode_aligned_states`, also at every episode step that is a
    multiple of `max_seq_len`, where R2D2's replay sequences start);
    prev_actions / prev_rewards [T, N]: the module's a_{t-1}, r_{t-1} inputs;
    trunc_state [K, ...]: the state after each truncated episode's last step (rows match
    `trunc_index`); bootstrap_state [N, ...]: the state for `bootstrap_obs`.
    """

    def __init__(self, runner: SingleAgentEnvRunner, T: int):
        self.runner = runner
        n = len(runner.envs)
        self.seq_index: list[np.ndarray] = []
        self.state_in: list[dict[str, np.ndarray]] = []
        self.trunc_state: list[dict[str, np.ndarray]] = []
        self.prev_actions = action_buffer(runner.act_space, (T, n))
        self.prev_rewards = np.empty((T, n), dtype=np.float32)
        self.t = 0

    def before_step(self, t: int) -> None:
        r = self.runner
        self.t = t
        starts = sequence_starts(t, r.steps_in_sequence, r.max_seq_len)
        if r.episode_aligned_states:
            starts |= r.ep_len % r.max_seq_len == 0
        if starts.any():
            envs = np.flatnonzero(starts)
            self.seq_index.append(np.stack([np.full_like(envs, t), envs], axis=1))
            self.state_in.append({k: v[envs] for k, v in r.state.items()})
            r.steps_in_sequence[starts] = 0
        nested.assign(self.prev_actions, t, r.prev_actions)
        self.prev_rewards[t] = r.prev_rewards

    def after_step(self, actions: Any, rewards: np.ndarray, terms: np.ndarray, truncs: np.ndarray):
        r = self.runner
        cut = truncs & ~terms  # rows in the order `_step_envs` appended to trunc_index
        if cut.any():
            self.trunc_state.append({k: v[cut] for k, v in r._state_out.items()})
        r._advance_state(actions, rewards, terms | truncs)

    def columns(self) -> dict[str, Any]:
        def cat(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
            if not rows:
                return {
                    k: np.empty((0, *v.shape), v.dtype)
                    for k, v in self.runner.initial_state.items()
                }
            return {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}

        return {
            Columns.SEQ_INDEX: np.concatenate(self.seq_index).astype(np.int64),
            Columns.STATE_IN: cat(self.state_in),
            Columns.PREV_ACTIONS: self.prev_actions,
            Columns.PREV_REWARDS: self.prev_rewards,
            Columns.TRUNC_STATE: cat(self.trunc_state),
            Columns.BOOTSTRAP_STATE: {k: v.copy() for k, v in self.runner.state.items()},
        }
