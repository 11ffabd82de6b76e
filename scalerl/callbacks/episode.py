"""Episode objects that the EnvRunner callbacks get (RLlib's `SingleAgentEpisode` and
`MultiAgentEpisode` accessors).

A runner builds them only when an EnvRunner event is configured (`runner_events.py`);
without one it keeps no per-step Python objects. An episode holds what the env returned
(observations before any observation filter, rewards before clipping, infos) and the
module's actions, from its reset to its end: unlike RLlib, scalerl does not cut an episode
into chunks at `sample()` boundaries, so `get_return()` and `len()` in `on_episode_end`
cover the whole episode.

Indices follow RLlib: an int (negative counts from the end, `-1` the latest), a list of
ints, or a slice; `None` is everything. Observations and infos have one more entry than
actions and rewards (the reset's).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any


def _get(items: list, indices: Any) -> Any:
    if indices is None:
        return list(items)
    if isinstance(indices, slice):
        return items[indices]
    if isinstance(indices, list | tuple):
        return [items[i] for i in indices]
    return items[indices]


class TemporaryData:
    """Per-episode values that callbacks keep between events (RLlib's temporary timestep
    data): lists keyed by name, dropped with the episode."""

    def __init__(self) -> None:
        self._data: dict[str, list] = defaultdict(list)

    def add(self, key: str, data: Any) -> None:
        """Append `data` under `key`."""
        self._data[key].append(data)

    def get(self, key: str) -> list:
        """The values under `key`, in order.

        Raises:
            KeyError: If nothing was added under `key`.
        """
        if key not in self._data:
            raise KeyError(f"No temporary timestep data under {key!r} in this episode.")
        return self._data[key]


class SingleAgentEpisode:
    """One episode of one env (or of one agent in a multi-agent episode).

    Attributes:
        id_: A unique id (a hex string).
        t_started: The env step at which this episode starts (0: at the reset).
        custom_data: A dict for user data kept with the episode (RLlib's `custom_data`).
        is_terminated / is_truncated: How the episode ended (both False while it runs).
    """

    def __init__(self, id_: str | None = None, agent_id: Any = None, module_id: Any = None):
        self.id_ = id_ or uuid.uuid4().hex
        self.agent_id = agent_id
        self.module_id = module_id
        self.t_started = 0
        self.observations: list = []
        self.actions: list = []
        self.rewards: list[float] = []
        self.infos: list = []
        self.is_terminated = False
        self.is_truncated = False
        self.custom_data: dict = {}
        self._temporary = TemporaryData()

    # -- recording (the runner) -----------------------------------------------------------
    def add_env_reset(self, observation: Any, infos: dict | None = None) -> None:
        """The first observation (and info) of the episode."""
        self.observations.append(observation)
        self.infos.append({} if infos is None else infos)

    def add_env_step(
        self,
        observation: Any,
        action: Any,
        reward: float,
        infos: dict | None = None,
        *,
        terminated: bool = False,
        truncated: bool = False,
    ) -> None:
        """One step: the action taken and what the env returned for it."""
        self.observations.append(observation)
        self.actions.append(action)
        self.rewards.append(float(reward))
        self.infos.append({} if infos is None else infos)
        self.is_terminated, self.is_truncated = bool(terminated), bool(truncated)

    # -- reading (callbacks) --------------------------------------------------------------
    @property
    def is_done(self) -> bool:
        """True once the episode terminated or was truncated."""
        return self.is_terminated or self.is_truncated

    @property
    def t(self) -> int:
        """The env step of the latest observation (RLlib's `env_t`)."""
        return self.t_started + len(self.actions)

    env_t = t

    def __len__(self) -> int:
        """The number of steps taken so far."""
        return len(self.actions)

    def env_steps(self) -> int:
        """The number of env steps taken so far (RLlib's name; `len(episode)`)."""
        return len(self.actions)

    def agent_steps(self) -> int:
        """The number of steps this agent took (equal to `env_steps()` single-agent)."""
        return len(self.actions)

    def get_return(self) -> float:
        """The sum of the rewards so far."""
        return float(sum(self.rewards))

    def get_observations(self, indices: Any = None) -> Any:
        """Observations at `indices` (`-1`: the latest; None: all, the reset's first)."""
        return _get(self.observations, indices)

    def get_actions(self, indices: Any = None) -> Any:
        """The module's actions at `indices` (`-1`: the latest)."""
        return _get(self.actions, indices)

    def get_rewards(self, indices: Any = None) -> Any:
        """Rewards at `indices` (`-1`: the latest)."""
        return _get(self.rewards, indices)

    def get_infos(self, indices: Any = None) -> Any:
        """Info dicts at `indices` (`-1`: the latest; None: all, the reset's first)."""
        return _get(self.infos, indices)

    def add_temporary_timestep_data(self, key: str, data: Any) -> None:
        """Keep `data` under `key` for later events of this episode (e.g. a value computed
        in `on_episode_step`, read back in `on_episode_end`)."""
        self._temporary.add(key, data)

    def get_temporary_timestep_data(self, key: str) -> list:
        """Everything `add_temporary_timestep_data(key, ...)` kept, in order (KeyError if
        nothing was added under `key`)."""
        return self._temporary.get(key)

    def __repr__(self) -> str:
        return f"SingleAgentEpisode(id_={self.id_!r}, len={len(self)}, done={self.is_done})"


class MultiAgentEpisode:
    """One episode of a multi-agent env: one `SingleAgentEpisode` per agent.

    An agent's step runs from the observation it acts on to its next observation (or its
    end); its reward is everything it received in between. Per-agent accessors take the
    indices in each agent's own steps (RLlib's `env_steps=False`) and return
    {agent_id: value} for the agents that have an entry there.

    Attributes:
        id_: A unique id (a hex string).
        env_t: Env steps taken so far; `env_t_started`: 0 (the reset).
        agent_episodes: {agent_id: SingleAgentEpisode}.
        agent_to_module_map: {agent_id: module_id} for the agents mapped so far.
        custom_data: A dict for user data kept with the episode.
    """

    def __init__(self, id_: str | None = None):
        self.id_ = id_ or uuid.uuid4().hex
        self.env_t = 0
        self.env_t_started = 0
        self.agent_episodes: dict[Any, SingleAgentEpisode] = {}
        self.agent_to_module_map: dict[Any, Any] = {}
        self.is_terminated = False
        self.is_truncated = False
        self.custom_data: dict = {}
        self._temporary = TemporaryData()
        self._pending: dict[Any, list] = {}  # agent -> [action, reward so far]
        self._hanging: dict[Any, float] = defaultdict(float)  # rewards before acting

    @property
    def t_started(self) -> int:
        """The env step at which this episode starts (0: at the reset)."""
        return self.env_t_started

    # -- recording (the runner) -----------------------------------------------------------
    def add_env_reset(self, observations: dict, infos: dict | None = None) -> None:
        """The agents' first observations (and infos)."""
        infos = infos or {}
        for aid, obs in observations.items():
            self._agent(aid).add_env_reset(obs, infos.get(aid))

    def _agent(self, aid: Any) -> SingleAgentEpisode:
        ep = self.agent_episodes.get(aid)
        if ep is None:
            mid = self.agent_to_module_map.get(aid)
            ep = self.agent_episodes[aid] = SingleAgentEpisode(agent_id=aid, module_id=mid)
        return ep

    def add_env_step(
        self,
        observations: dict,
        actions: dict,
        rewards: dict,
        infos: dict,
        terminateds: dict,
        truncateds: dict,
    ) -> None:
        """One env step: the actions of the agents that acted, and the env's dicts."""
        self.env_t += 1
        all_term = bool(terminateds.get("__all__", False))
        all_trunc = bool(truncateds.get("__all__", False))
        for aid, action in actions.items():
            self._pending[aid] = [action, self._hanging.pop(aid, 0.0)]
        for aid, r in rewards.items():
            if aid in self._pending:
                self._pending[aid][1] += float(r)
            else:
                self._hanging[aid] += float(r)
        infos = infos if isinstance(infos, dict) else {}
        for aid in list(self._pending):
            term = all_term or bool(terminateds.get(aid, False))
            trunc = all_trunc or bool(truncateds.get(aid, False))
            if aid in observations or term or trunc:
                action, reward = self._pending.pop(aid)
                ep = self._agent(aid)
                if ep.module_id is None:  # mapped when it first acted
                    ep.module_id = self.agent_to_module_map.get(aid)
                obs = observations.get(aid, ep.observations[-1] if ep.observations else None)
                ep.add_env_step(
                    obs, action, reward, infos.get(aid), terminated=term, truncated=trunc
                )
        for aid, obs in observations.items():  # agents that observe for the first time
            if aid not in self.agent_episodes:
                self._agent(aid).add_env_reset(obs, infos.get(aid))
        self.is_terminated, self.is_truncated = all_term, all_trunc

    # -- reading (callbacks) --------------------------------------------------------------
    @property
    def agent_ids(self) -> set:
        """The ids of the agents that took part so far."""
        return set(self.agent_episodes)

    @property
    def is_done(self) -> bool:
        """True once the episode terminated or was truncated (`__all__`)."""
        return self.is_terminated or self.is_truncated

    def __len__(self) -> int:
        """Env steps taken so far."""
        return self.env_t

    def env_steps(self) -> int:
        """Env steps taken so far (RLlib's name; `len(episode)`)."""
        return self.env_t

    def agent_steps(self) -> int:
        """The steps of all agents together."""
        return sum(len(ep) for ep in self.agent_episodes.values())

    def module_for(self, agent_id: Any) -> Any:
        """The module id agent `agent_id` is mapped to in this episode (None if not yet)."""
        return self.agent_to_module_map.get(agent_id)

    def get_return(self, include_hanging_rewards: bool = False) -> float:
        """The sum of all agents' rewards; `include_hanging_rewards`: also rewards given
        to agents that have not acted (again) since."""
        total = sum(ep.get_return() for ep in self.agent_episodes.values())
        if include_hanging_rewards:
            total += sum(self._hanging.values()) + sum(p[1] for p in self._pending.values())
        return float(total)

    def _per_agent(self, name: str, indices: Any, agent_ids: Any) -> dict:
        ids = self.agent_episodes if agent_ids is None else agent_ids
        if not isinstance(ids, list | tuple | set | dict):
            ids = [ids]
        out = {}
        for aid in ids:
            ep = self.agent_episodes.get(aid)
            if ep is None:
                continue
            try:
                out[aid] = getattr(ep, name)(indices)
            except IndexError:  # that agent has no entry there
                continue
        return out

    def get_observations(self, indices: Any = None, agent_ids: Any = None) -> dict:
        """{agent_id: observation(s) at `indices` of that agent's steps}."""
        return self._per_agent("get_observations", indices, agent_ids)

    def get_actions(self, indices: Any = None, agent_ids: Any = None) -> dict:
        """{agent_id: action(s) at `indices` of that agent's steps}."""
        return self._per_agent("get_actions", indices, agent_ids)

    def get_rewards(self, indices: Any = None, agent_ids: Any = None) -> dict:
        """{agent_id: reward(s) at `indices` of that agent's steps}."""
        return self._per_agent("get_rewards", indices, agent_ids)

    def get_infos(self, indices: Any = None, agent_ids: Any = None) -> dict:
        """{agent_id: info(s) at `indices` of that agent's steps}."""
        return self._per_agent("get_infos", indices, agent_ids)

    def add_temporary_timestep_data(self, key: str, data: Any) -> None:
        """Keep `data` under `key` for later events of this episode (e.g. a value computed
        in `on_episode_step`, read back in `on_episode_end`)."""
        self._temporary.add(key, data)

    def get_temporary_timestep_data(self, key: str) -> list:
        """Everything `add_temporary_timestep_data(key, ...)` kept, in order (KeyError if
        nothing was added under `key`)."""
        return self._temporary.get(key)

    def __repr__(self) -> str:
        return (
            f"MultiAgentEpisode(id_={self.id_!r}, env_t={self.env_t}, "
            f"agents={sorted(map(str, self.agent_episodes))}, done={self.is_done})"
        )
