"""MultiAgentEnvRunner: steps N multi-agent envs, one batched forward pass per module per step.

Each agent's experience is its own single-agent trajectory: a step of agent a starts when
a acts on an observation and ends when a next observes (or its episode ends); its reward
is everything a received in between (turn-based games pay a player while the other moves).
A step is emitted in the `sample()` call in which it ends, so a step begun at the end of one
fragment joins the next.

Per module the batch has the single-agent fragment layout with one column, [M, 1]: the
steps of every (env, agent, episode) are laid end to end, and wherever the next row belongs
to another trajectory the row is marked truncated with the agent's next observation in
`trunc_obs` (unless the episode terminated there). GAE and n-step returns then stop and
bootstrap exactly where the trajectory was cut, so the single-agent learners train on it
unchanged.

Stateful (recurrent) modules keep a state per agent (`agent_memory.AgentMemory`) and add
the recurrent columns of the single-agent fragment, with a sequence starting at every
trajectory's first row. With an observation filter each module has its own
(`MultiAgentMeanStdFilter`), updated from its agents' observations.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import repeat
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalerl.callbacks.metrics_logger import MetricsLogger
from scalerl.callbacks.runner_events import make_episode_events, with_logged_metrics
from scalerl.connectors.env_to_module.multi_agent_filter import build_multi_agent_filter
from scalerl.core.rl_module import Columns
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.env.agent_memory import AgentMemory
from scalerl.env.checks import (
    MAX_RESETS,
    EnvChecks,
    finite,
    obs_problem,
    reset_obs,
    step_api_error,
)
from scalerl.env.env_restarts import RESTARTED, env_step_error, pop_env_restarts
from scalerl.env.env_runner import check_obs, make_envs, to_env_actions
from scalerl.env.multi_agent_env import check_multi_agent_reset, check_multi_agent_step
from scalerl.env.multi_agent_trajectories import Trajectory, lay_end_to_end, rows_of, stack_as
from scalerl.env.registry import env_name
from scalerl.env.runner_state import get_runner_state, set_runner_state
from scalerl.utils import nested
from scalerl.utils.errors import ConfigError, EnvError

ALL = "__all__"
CHECKED_STEPS = 20  # per env, after the first reset


class EpisodeInfo:
    """What `policy_mapping_fn(agent_id, episode, **kwargs)` gets as `episode`."""

    def __init__(self, id_: int, env_index: int, worker_index: int):
        self.id_ = id_
        self.env_index = env_index
        self.worker_index = worker_index


class MultiAgentEnvRunner:
    """The multi-agent counterpart of `SingleAgentEnvRunner` (same methods, dict batches)."""

    def __init__(
        self,
        config: Any,
        env_creator: Any,
        module_spec: MultiRLModuleSpec,
        worker_index: int = 0,
        num_workers: int = 0,
    ):
        if worker_index > 0:
            torch.set_num_threads(1)
        self.config = config
        self.worker_index = worker_index
        self.env_id = env_name(config.env)
        self.envs, self._env_seeds, self.rng = make_envs(
            config, env_creator, worker_index, num_workers, multi_agent=True
        )
        self.module = module_spec.build().eval()
        self.metrics = MetricsLogger()  # what this runner's callbacks log
        self.events = make_episode_events(self, config, worker_index, num_workers, True)
        self.specs = dict(module_spec.rl_module_specs)
        self.mapping_fn = config.get_policy_mapping_fn()
        # {module id: MeanStdFilter} or None. Local mode: the central one; Ray: a copy.
        self.obs_filter = build_multi_agent_filter(
            config.observation_filter, {mid: s.observation_space for mid, s in self.specs.items()}
        )
        self.memory = AgentMemory(self.module, self.specs)  # per-agent recurrent state
        self._numpy_fns: dict[str, Any] = {}
        self._refresh_numpy_fns()
        self._episodes = 0
        self.obs: list[dict] | None = None  # per env: agent id -> observation to act on
        self._checked: set = set()  # agents whose first observation was checked
        # Per-step checks (`env/checks.py`), one per module's observation space.
        self.checks: dict[str, EnvChecks] | None = None
        if config.check_env_steps:
            self.checks = {mid: self._module_checks(mid) for mid in self.specs}
        self._all_flat = self.checks is not None and all(c.flat for c in self.checks.values())
        self.num_steps = 0  # this runner's env steps, for error messages
        self.num_nonfinite_dropped = 0  # since the last sample() (on_nonfinite="drop")

    def _module_checks(self, mid: str) -> EnvChecks:
        space = self.specs[mid].observation_space
        return EnvChecks(space, self.env_id, self.config.on_nonfinite)

    # -- weights ------------------------------------------------------------------
    def set_weights(self, weights: dict[str, Any], obs_filter_state: dict | None = None) -> None:
        """Load {module_id: weights} (modules not named keep theirs) and, if given, the
        central observation-filter statistics."""
        for mid, w in weights.items():
            if mid in self.module:
                self.module[mid].set_state(w)
        self._refresh_numpy_fns()
        if obs_filter_state is not None and self.obs_filter is not None:
            self.obs_filter.set_state(obs_filter_state)

    def _refresh_numpy_fns(self) -> None:
        self._numpy_fns = {
            mid: m.get_numpy_exploration_fn()
            for mid, m in self.module.items()
            if not m.is_stateful()
        }
        self.memory.refresh(self.module)

    def update_modules(self, add: tuple | None, remove: str | None, mapping_fn: Any) -> None:
        """Add (module_id, spec) and/or remove a module, and take a new mapping; episodes
        in progress are dropped (their agents may map elsewhere now)."""
        if add is not None:
            mid, spec = add
            self.module.add_module(mid, spec.build().eval())
            self.specs[mid] = spec
            self.memory.add_module(mid, self.module[mid], spec.action_space)
            if self.obs_filter is not None:
                self.obs_filter.add_module(mid, spec.observation_space)
            if self.checks is not None:
                self.checks[mid] = self._module_checks(mid)
                self._all_flat = all(c.flat for c in self.checks.values())
        if remove is not None:
            self.module.remove_module(remove)
            del self.specs[remove]
            self.memory.remove_module(remove)
            if self.obs_filter is not None:
                self.obs_filter.remove_module(remove)
            if self.checks is not None:
                self.checks.pop(remove, None)
        self.mapping_fn = mapping_fn
        self._refresh_numpy_fns()
        self.obs = None

    def pop_obs_filter_delta(self) -> dict | None:
        """The filter statistics gathered since the last call (then reset), for merging."""
        if self.obs_filter is None:
            return None
        delta = self.obs_filter.get_delta_state()
        self.obs_filter.reset_delta()
        return delta

    # -- state (checkpoints) ---------------------------------------------------------
    def get_state(self) -> dict:
        """The JSON-able sampling state (RNGs, counters): see `runner_state`."""
        return get_runner_state(self)

    def set_state(self, state: dict) -> None:
        """Restore `get_state()`'s result; episodes in progress restart."""
        set_runner_state(self, state)

    # -- episodes -----------------------------------------------------------------
    def _new_episode(self, i: int, obs: dict, infos: Any = None) -> None:
        self._episodes += 1
        self.episode_info[i] = EpisodeInfo(self._episodes, i, self.worker_index)
        self.agent_module[i] = {}
        self.ep_return[i] = 0.0
        self.ep_len[i] = 0
        self.ep_agent_returns[i] = defaultdict(float)
        self.pending[i] = {}
        self.memory.forget_env(i)
        self.obs[i] = self._checked_obs(i, obs, "reset()")
        if self.events is not None:
            self.events.start(i, self.obs[i], infos, self.agent_module[i])

    def _reset_all(self) -> None:
        n = len(self.envs)
        self.obs = [{} for _ in range(n)]
        self.episode_info: list[EpisodeInfo | None] = [None] * n
        self.agent_module: list[dict] = [{} for _ in range(n)]
        self.ep_return = np.zeros(n)
        self.ep_len = np.zeros(n, dtype=np.int64)
        self.ep_agent_returns: list[dict] = [defaultdict(float) for _ in range(n)]
        # per env: agent id -> [obs, action, dist_inputs, reward so far, episode step, raw
        # obs, StepMemory or None] of its open step
        self.pending: list[dict] = [{} for _ in range(n)]
        # The first steps of each env are checked against the MultiAgentEnv API (agent
        # ids, spaces, '__all__'), with errors that name the agent; later ones are not.
        checks = 0 if self.config.disable_env_checking else CHECKED_STEPS
        self._checks_left = [
            checks if hasattr(e, "get_observation_space") else 0 for e in self.envs
        ]
        for i, (env, s) in enumerate(zip(self.envs, self._env_seeds)):
            if self.events is not None:
                self.events.create(i)
            result = env.reset(seed=s)
            obs = reset_obs(self.env_id, result, i, self.worker_index)
            if self._checks_left[i] > 0:
                check_multi_agent_reset(env, obs, result[1], self.checks is not None)
            self._new_episode(i, obs, result[1])

    def module_for(self, i: int, agent_id: Any) -> str:
        """The module agent `agent_id` of env i uses this episode (mapped once per episode)."""
        mid = self.agent_module[i].get(agent_id)
        if mid is None:
            mid = self.mapping_fn(agent_id, self.episode_info[i], worker=self)
            if mid not in self.module:
                raise ConfigError(
                    f"`policy_mapping_fn` mapped agent {agent_id!r} to `{mid}`, which is not a "
                    f"policy. Policies: {sorted(self.module.keys())}; add it to "
                    "`config.multi_agent(policies=...)` or fix the mapping."
                )
            self.agent_module[i][agent_id] = mid
        return mid

    def _where(self, i: int, aid: Any, where: str = "step()") -> str:
        """Where an observation or reward came from, for error messages (`num_steps`
        counts whole vector steps, so the runner's step is exact up to the env order)."""
        return (
            f"from {where} for agent {aid!r} at episode step {int(self.ep_len[i])} (sub-env "
            f"{i} of runner {self.worker_index}, around the runner's env step "
            f"{self.num_steps + i + 1})"
        )

    def _checked_obs(self, i: int, obs: dict, where: str) -> dict:
        if not isinstance(obs, dict):
            raise EnvError(
                f"Multi-agent env `{self.env_id}` returned {type(obs).__name__} from {where}; "
                "a MultiAgentEnv returns a dict {agent_id: observation}."
            )
        checks = self.checks
        if checks is not None and self._all_flat:
            return obs  # flat spaces: checked batched in `_act`
        out = {}
        for aid, o in obs.items():
            if checks is not None:  # Dict/Tuple spaces: every step, per agent
                c = checks[self.module_for(i, aid)]
                if not c.flat:
                    o = c.check_obs(o, self._where(i, aid, where))
            elif aid not in self._checked:
                space = self.specs[self.module_for(i, aid)].observation_space
                try:
                    check_obs(o, space, "observation")
                except EnvError as e:
                    raise EnvError(
                        f"Env `{self.env_id}`: agent {aid!r}'s observation from {where} does "
                        f"not fit its module's observation space {space} ({e}). Fix the env's "
                        "`observation_spaces`, or give the module its own space."
                    ) from None
                self._checked.add(aid)
            out[aid] = o
        return out

    def _reset(self, i: int) -> None:
        """Reset env i after an episode end and start its next episode (its observations
        are checked where every observation is: in `_checked_obs` and `_act`)."""
        if self.events is not None:
            self.events.discard(i)  # one that did not end (`on_episode_end`) is dropped
            self.events.create(i)
        result = self.envs[i].reset()
        self._new_episode(i, reset_obs(self.env_id, result, i, self.worker_index), result[1])

    def _bad_observations(self, mid: str, members: list, record: dict | None) -> None:
        """The agents of module `mid` whose observation failed the batched check in `_act`:
        an EnvError for a shape or dtype that does not fit; NaN/inf as `_nonfinite`."""
        c = self.checks[mid]
        for i, aid in members:
            o = self.obs[i].get(aid)
            if o is None:  # its episode was dropped already
                continue
            _, why = obs_problem(o, c.space)
            if why:
                raise c.obs_error(why, self._where(i, aid))
            if not finite(o):
                self._nonfinite(i, aid, "observation", o, record)

    def _nonfinite(self, i: int, aid: Any, what: str, value: Any, record: dict | None) -> None:
        """Agent `aid` of env i got a NaN/inf `what`: an EnvError, or with
        `on_nonfinite="drop"` the episode ends here, dropped from the metrics: every open
        step is cut and bootstraps from its agent's last good observation."""
        c = self.checks[self.module_for(i, aid)]
        if not c.drop:
            raise c.nonfinite_error(what, value, self._where(i, aid))
        for a in list(self.pending[i]):
            self._end_step(i, a, None, False, record)
        if record is not None:  # steps that ended on a bad observation: cut before it
            ep = self.episode_info[i].id_
            for (env, _, episode), traj in record.items():
                if env == i and episode == ep and not finite(traj.last_next_obs):
                    traj.last_next_obs, traj.terminated = traj.last_raw_obs, False
        self.num_nonfinite_dropped += 1
        self._reset(i)

    # -- acting -------------------------------------------------------------------
    def _act(self, explore: bool, record: dict | None = None, retries: int = 0) -> list[dict]:
        """Actions for every agent that observed: one forward pass per module.

        Returns per env {agent id: (module action, env action, dist inputs or None, the
        filtered observation or None, StepMemory or None)}."""
        groups: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for i, obs in enumerate(self.obs):
            for aid in obs:
                groups[self.module_for(i, aid)].append((i, aid))
        checks = self.checks
        stacked = {}
        for mid, members in groups.items():
            rows = [self.obs[i][aid] for i, aid in members]
            if checks is None:
                stacked[mid] = stack_as(self.specs[mid].observation_space, rows)
                continue
            # Every step, one check per module on the stacked batch: shape, dtype kind,
            # Discrete range and NaN/inf (see env/checks.py); Dict/Tuple: NaN/inf here,
            # shapes per agent in `_checked_obs`.
            c = checks[mid]
            # NaN/inf: here when dropping or evaluating, else once per fragment (`_fragment`).
            per_step = c.drop or record is None
            x = c.stack(rows, per_step) if c.flat else stack_as(c.space, rows)
            if x is None or (per_step and not c.flat and not c.batch_finite(x)):
                if retries >= MAX_RESETS:
                    raise EnvError(
                        f"Env `{self.env_id}` kept returning non-finite observations after "
                        f"{MAX_RESETS} resets in a row (`on_nonfinite='drop'`); fix the env."
                    )
                self._bad_observations(mid, members, record)  # raises, or drops episodes
                return self._act(explore, record, retries + 1)
            stacked[mid] = x
        out: list[dict] = [{} for _ in self.envs]
        for mid, members in groups.items():
            module = self.module[mid]
            obs = stacked[mid]
            n = len(members)
            seen: Any = repeat(None)  # None: the module saw the raw observation
            if self.obs_filter is not None:  # statistics move only while sampling to train
                obs = self.obs_filter[mid](obs, update=record is not None)
                seen = rows_of(obs, n)
            if self.memory.is_stateful(mid):
                inputs = self.memory.inputs(mid, members)
                actions, dist_inputs, state_out = self.memory.forward(
                    mid, module, obs, inputs, explore
                )
                actions = self._sample(module, actions, dist_inputs)
                steps = self.memory.advance(members, inputs, rows_of(actions, n), state_out)
            else:
                actions, dist_inputs = self._forward(mid, module, obs, explore)
                steps = repeat(None)
            cfg = self.config
            env_actions = to_env_actions(
                actions, self.specs[mid].action_space, cfg.normalize_actions, cfg.clip_actions
            )
            rows = zip(
                rows_of(actions, n),
                rows_of(env_actions, n),
                [None] * n if dist_inputs is None else dist_inputs,
                seen,
                steps,
            )
            for (i, aid), row in zip(members, rows):
                out[i][aid] = row
        return out

    def _forward(self, mid: str, module: Any, obs: Any, explore: bool) -> tuple[Any, Any]:
        numpy_fn = self._numpy_fns.get(mid) if explore else None
        actions = None
        if numpy_fn is not None:
            dist_inputs = numpy_fn(obs).astype(np.float32, copy=False)
        else:
            with torch.inference_mode():
                batch = {Columns.OBS: nested.map_structure(torch.from_numpy, obs)}
                fwd = (
                    module.forward_exploration(batch)
                    if explore
                    else module.forward_inference(batch)
                )
                dist_inputs = fwd.get(Columns.ACTION_DIST_INPUTS)
                actions = fwd.get(Columns.ACTIONS)
                if actions is None and not explore:
                    dist = module.get_inference_action_dist_cls()(dist_inputs)
                    actions = dist.deterministic_sample()
            if dist_inputs is not None:
                dist_inputs = dist_inputs.numpy()
            if actions is not None:
                actions = nested.map_structure(lambda a: a.numpy(), actions)
        return self._sample(module, actions, dist_inputs), dist_inputs

    def _sample(self, module: Any, actions: Any, dist_inputs: np.ndarray | None) -> Any:
        """The actions, sampled from the exploration distribution when not given."""
        if actions is None:
            dist_cls = module.get_exploration_action_dist_cls()
            actions = dist_cls.sample_numpy(dist_inputs, self.rng)
        return actions

    # -- stepping -----------------------------------------------------------------
    def _step(self, explore: bool, record: dict | None, finished: list) -> None:
        """One step of every env. Ends steps of agents that observe again or are done
        (into `record`: (env, agent, episode) -> Trajectory), opens the new ones."""
        acts = self._act(explore, record)
        checks, isfinite, ep_len = self.checks, math.isfinite, self.ep_len
        for i, env in enumerate(self.envs):
            action_dict = {}
            for aid, (action, env_action, dist_inputs, seen, step) in acts[i].items():
                action_dict[aid] = env_action
                raw = self.obs[i][aid]
                seen = raw if seen is None else seen
                self.pending[i][aid] = [seen, action, dist_inputs, 0.0, ep_len[i], raw, step]
            try:
                out = env.step(action_dict)
            except Exception as e:
                raise env_step_error(self.env_id, self.worker_index, i, e) from e
            try:
                obs, rewards, terms, truncs, infos = out
                all_term, all_trunc = terms.get(ALL, False), truncs.get(ALL, False)
                total_reward = sum(rewards.values())  # None or a str: TypeError
            except (TypeError, ValueError, AttributeError):
                where = f"at episode step {int(self.ep_len[i]) + 1} (sub-env {i})"
                raise step_api_error(self.env_id, out, where, True) from None
            self.ep_len[i] += 1
            if checks is not None:  # every step: flags are bools, rewards and ends finite
                if not (all_term is True or all_term is False) or not (
                    all_trunc is True or all_trunc is False
                ):
                    where = f"at episode step {int(self.ep_len[i])} (sub-env {i})"
                    error = next(iter(checks.values())).flags_error(all_term, all_trunc, where)
                    if error is not None:
                        raise error
                bad = None
                if not isfinite(total_reward):  # one check for all agents' rewards
                    bad = next((a for a, r in rewards.items() if not isfinite(r)), None)
                    what = "reward"
                if bad is None and (all_term or all_trunc):  # final observations
                    bad = next((a for a, o in obs.items() if not finite(o)), None)
                    what = "final observation"
                if bad is not None:
                    value = rewards[bad] if what == "reward" else obs[bad]
                    self._nonfinite(i, bad, what, value, record)
                    continue
            if self._checks_left[i] > 0 and infos is not RESTARTED:  # full API check, first steps
                self._checks_left[i] -= 1
                args = (obs, rewards, terms, truncs, infos, checks is not None)
                check_multi_agent_step(env, *args)
            for aid, r in rewards.items():
                r = float(r)
                self.ep_return[i] += r
                self.ep_agent_returns[i][aid] += r
                if aid in self.pending[i]:
                    self.pending[i][aid][3] += r
            all_term, all_trunc = bool(all_term), bool(all_trunc)
            if self.events is not None:  # only with EnvRunner callbacks
                if infos is RESTARTED:
                    self.events.discard(i)  # cut short: dropped from the metrics too
                else:
                    actions = {aid: a[0] for aid, a in acts[i].items()}
                    self.events.step(i, obs, actions, rewards, infos, terms, truncs)
            if all_term or all_trunc:
                for aid in list(self.pending[i]):
                    term = all_term or bool(terms.get(aid, False))
                    self._end_step(i, aid, obs.get(aid), term, record)
                if infos is not RESTARTED:  # an env recreated mid-episode: not reported
                    finished.append(self._episode_summary(i))
                self._reset(i)
                continue
            dropped = False
            for aid in list(self.pending[i]):
                if terms.get(aid, False) or truncs.get(aid, False):
                    if checks is not None and aid in obs and not finite(obs[aid]):
                        self._nonfinite(i, aid, "final observation", obs[aid], record)
                        dropped = True
                        break
                    self._end_step(i, aid, obs.get(aid), bool(terms.get(aid, False)), record)
                    self.memory.forget(i, aid)
                elif aid in obs:
                    self._end_step(i, aid, obs[aid], False, record)
            if dropped:
                continue
            self.obs[i] = self._checked_obs(
                i, {a: o for a, o in obs.items() if not (terms.get(a) or truncs.get(a))}, "step()"
            )

    def _end_step(self, i: int, aid: Any, next_obs: Any, terminated: bool, record: dict | None):
        obs, action, dist_inputs, reward, step, raw_obs, memory = self.pending[i].pop(aid)
        if memory is not None:
            self.memory.end_step(i, aid, reward)
        if record is None:
            return
        key = (i, aid, self.episode_info[i].id_)
        traj = record.get(key)
        if traj is None:
            mid = self.agent_module[i][aid]
            traj = record[key] = Trajectory(mid, i, aid, self.memory.new_trajectory(mid))
        if memory is not None:
            traj.memory.add(memory)
        traj.steps.append(step)
        traj.obs.append(obs)
        traj.actions.append(action)
        traj.dist_inputs.append(dist_inputs)
        traj.rewards.append(reward)
        # An agent cut off without a final observation bootstraps from its last one.
        traj.last_next_obs = raw_obs if next_obs is None else next_obs
        traj.last_raw_obs = raw_obs
        traj.terminated = terminated

    def _check_fragment(self, mid: str, trajs: list, obs: Any, trunc_obs: list) -> None:
        """NaN/inf in a module's observations (stacked) or bootstrap observations: an
        EnvError naming the first agent, env and episode step (`on_nonfinite="raise"`)."""
        c = self.checks[mid]
        if c.batch_finite(obs) and all(finite(o) for o in trunc_obs):
            return
        for traj in trajs:
            for k, o in enumerate(traj.obs):
                if not finite(o):
                    self._nonfinite_at(c, traj, o, int(traj.steps[k]), "")
            if not traj.terminated and not finite(traj.last_next_obs):
                self._nonfinite_at(c, traj, traj.last_next_obs, int(traj.steps[-1]), "after ")

    def _nonfinite_at(self, c: EnvChecks, traj: Any, value: Any, step: int, after: str) -> None:
        where = "from reset()" if step == 0 and not after else "from step()"
        raise c.nonfinite_error(
            "observation",
            value,
            f"{where} for agent {traj.agent!r} {after}at episode step {step} (sub-env "
            f"{traj.env} of runner {self.worker_index})",
        )

    def _episode_summary(self, i: int) -> dict:
        modules: dict[str, float] = defaultdict(float)
        for aid, ret in self.ep_agent_returns[i].items():
            mid = self.agent_module[i].get(aid)
            if mid is not None:
                modules[mid] += ret
        return {
            "return": float(self.ep_return[i]),
            "length": int(self.ep_len[i]),
            "agents": dict(self.ep_agent_returns[i]),
            "modules": dict(modules),
        }

    # -- sampling -----------------------------------------------------------------
    def sample(self, num_timesteps: int | None = None) -> tuple[dict[str, dict], dict]:
        """Step each env `num_timesteps` times (default: the rollout fragment length).

        Returns ({module_id: [M, 1] fragment}, metrics)."""
        T = num_timesteps or self.config.get_rollout_fragment_length()
        if self.obs is None:
            self._reset_all()
        record: dict = {}
        finished: list[dict] = []
        for _ in range(T):
            self._step(self.config.explore, record, finished)
            self.num_steps += len(self.envs)
        # Steps still open are cut here: they end (and are emitted) in a later fragment.
        by_module: dict[str, list[Trajectory]] = defaultdict(list)
        for traj in record.values():
            by_module[traj.module].append(traj)
        batch = {mid: self._fragment(mid, trajs) for mid, trajs in by_module.items()}
        metrics = self._metrics(finished, T * len(self.envs))
        metrics["num_agent_steps"] = {mid: len(b[Columns.REWARDS]) for mid, b in batch.items()}
        return batch, metrics

    def _fragment(self, mid: str, trajs: list[Trajectory]) -> dict[str, Any]:
        """Module `mid`'s [M, 1] column (see the module doc): checked, with the bootstrap
        observations filtered and the recurrent columns of a stateful module."""
        fragment, trunc_obs = lay_end_to_end(mid, trajs, self.specs[mid].observation_space)
        if self.checks is not None and not self.checks[mid].drop:
            obs = nested.map_structure(lambda x: x[:, 0], fragment[Columns.OBS])
            self._check_fragment(mid, trajs, obs, trunc_obs)
        if self.obs_filter is not None:  # frozen: these observations were seen already
            for key in (Columns.BOOTSTRAP_OBS, Columns.TRUNC_OBS):
                fragment[key] = self.obs_filter[mid](fragment[key], update=False)
        if self.memory.is_stateful(mid):
            fragment.update(self.memory.columns(mid, trajs))
        return fragment

    def sample_episodes(
        self,
        num_episodes: int | None = None,
        num_timesteps: int | None = None,
        explore: bool = False,
    ) -> dict:
        """Run whole episodes (evaluation): metrics only, no batch."""
        self._reset_all()
        finished: list[dict] = []
        steps = 0
        while True:
            if num_episodes is not None and len(finished) >= num_episodes:
                break
            if num_timesteps is not None and steps >= num_timesteps:
                break
            if num_episodes is None and num_timesteps is None:
                break
            self._step(explore, None, finished)
            steps += len(self.envs)
            self.num_steps += len(self.envs)
        if num_episodes is not None:
            finished = finished[:num_episodes]
        self.obs = None  # training continues from fresh episodes
        return self._metrics(finished, steps)

    def _pop_dropped(self) -> int:
        n, self.num_nonfinite_dropped = self.num_nonfinite_dropped, 0
        return n

    def _metrics(self, finished: list[dict], steps: int) -> dict:
        agents: dict[Any, list[float]] = defaultdict(list)
        modules: dict[str, list[float]] = defaultdict(list)
        for ep in finished:
            for aid, r in ep["agents"].items():
                agents[aid].append(r)
            for mid, r in ep["modules"].items():
                modules[mid].append(r)
        metrics = {
            "episode_returns": [ep["return"] for ep in finished],
            "episode_lens": [ep["length"] for ep in finished],
            "agent_episode_returns": dict(agents),
            "module_episode_returns": dict(modules),
            "num_env_steps": steps,
            "num_sub_env_restarts": pop_env_restarts(self.envs),
            "num_nonfinite_dropped": self._pop_dropped(),
        }
        return with_logged_metrics(self, metrics)

    def stop(self) -> None:
        """Close and drop the runner's envs."""
        for env in self.envs:
            env.close()
        self.envs = []


def agent_spaces(env: Any, agent_id: Any) -> tuple[gym.Space, gym.Space]:
    """An agent's (observation, action) spaces from a MultiAgentEnv."""
    if hasattr(env, "get_observation_space"):
        return env.get_observation_space(agent_id), env.get_action_space(agent_id)
    obs, act = getattr(env, "observation_spaces", None), getattr(env, "action_spaces", None)
    if isinstance(obs, dict) and isinstance(act, dict):
        return obs[agent_id], act[agent_id]
    return env.observation_space, env.action_space
