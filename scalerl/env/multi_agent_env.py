"""The multi-agent environment API (RLlib's new-stack `MultiAgentEnv`) and its checks.

An episode of a `MultiAgentEnv` is a sequence of dicts keyed by agent id:

- `reset(*, seed=None, options=None) -> (obs, infos)`
- `step(action_dict) -> (obs, rewards, terminateds, truncateds, infos)`

Only the agents in an observation dict act next: `action_dict` must hold exactly the agents
of the last observation dict that are not done (`agents_to_act`). Turn-based games return
only the player to move; agents may finish early (their `terminateds` / `truncateds` flag is
True together with their final observation, after which they do not appear again in the
episode), join late (first appear in a later observation dict), and have different spaces.
Rewards may be reported for agents that are not in the observation dict (a turn-based
opponent's reward, say): they belong to that agent's last action. `terminateds` always
holds `"__all__"` (`truncateds` may lack it, as in RLlib: then False); the episode is over
when either is True (scalerl's
own envs and wrappers then set exactly one: truncated when every agent that ended in the
last step was truncated, else terminated). Per-agent flags decide bootstrapping.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.env.checks import finite
from scalerl.env.registry import EnvContext, get_env_creator
from scalerl.utils.errors import EnvError, did_you_mean

AgentID = Hashable
MultiAgentDict = dict

ALL = "__all__"  # key of the episode-level flag in `terminateds` / `truncateds`
COMMON = "__common__"  # optional `infos` key for information about no single agent


class MultiAgentEnv(gym.Env):
    """An environment hosting several agents, each with its own spaces.

    Subclasses set `possible_agents` (every agent id that may ever appear, fixed for the
    env's life), `agents` (the agents currently in the episode), and the dicts
    `observation_spaces` / `action_spaces` mapping each possible agent to its spaces, then
    implement `reset` and `step` as described in this module's docstring. Agent ids are
    hashable values other than `"__all__"` and `"__common__"` (strings or ints).
    """

    # Every agent id that may appear, with its spaces (RLlib's new-stack attributes).
    observation_spaces: dict[AgentID, gym.Space] | None = None
    action_spaces: dict[AgentID, gym.Space] | None = None
    possible_agents: list[AgentID] = []
    agents: list[AgentID] = []

    # Old-stack style: one space shared by all agents, or a Dict keyed by agent id.
    # `get_observation_space` / `get_action_space` fall back to these (as RLlib does), so
    # envs written that way keep working.
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None

    def __init__(self) -> None:
        super().__init__()
        # Per-instance lists: the class-level defaults must never be mutated in place.
        self.agents = list(self.agents)
        self.possible_agents = list(self.possible_agents) or list(self.agents)

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[MultiAgentDict, MultiAgentDict]:
        """Start an episode; return observations (of the agents to act first) and infos.

        The base implementation only seeds `self.np_random`; subclasses call
        `super().reset(seed=seed)` and return `(obs_dict, info_dict)`.
        """
        super().reset(seed=seed, options=options)
        return {}, {}

    def step(
        self, action_dict: MultiAgentDict
    ) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        """Apply one action per acting agent; return `(obs, rewards, terminateds, truncateds,
        infos)` dicts keyed by agent id, `"__all__"` in `terminateds` and `truncateds`."""
        raise NotImplementedError

    def render(self) -> Any:
        """Render the env (None by default)."""
        return None

    def get_observation_space(self, agent_id: AgentID) -> gym.Space:
        """The observation space of `agent_id`."""
        return self._space_of(agent_id, "observation")

    def get_action_space(self, agent_id: AgentID) -> gym.Space:
        """The action space of `agent_id`."""
        return self._space_of(agent_id, "action")

    @property
    def num_agents(self) -> int:
        """How many agents are in the episode now (`len(self.agents)`)."""
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        """How many agents may ever appear (`len(self.possible_agents)`)."""
        return len(self.possible_agents)

    def _space_of(self, agent_id: AgentID, kind: str) -> gym.Space:
        spaces = getattr(self, f"{kind}_spaces")
        if spaces is not None:
            if agent_id in spaces:
                return spaces[agent_id]
            known = list(spaces)
            raise EnvError(
                f"{type(self).__name__}.{kind}_spaces has no entry for agent {agent_id!r}."
                f"{did_you_mean(str(agent_id), [str(a) for a in known])}"
                f" Agents with a {kind} space: {known!r}."
            )
        shared = getattr(self, f"{kind}_space")
        if isinstance(shared, gym.spaces.Dict) and agent_id in shared.spaces:
            return shared[agent_id]
        if shared is not None:
            return shared
        raise EnvError(
            f"{type(self).__name__} declares no {kind} space for agent {agent_id!r}: set "
            f"`self.{kind}_spaces = {{agent_id: space, ...}}` in its constructor."
        )


def make_multi_agent(env_name_or_creator: str | Callable[[EnvContext], gym.Env]) -> type:
    """Turn a single-agent env into a `MultiAgentEnv` class of N independent copies.

    `make_multi_agent("CartPole-v1")({"num_agents": 3})` holds three CartPoles, agent ids
    `0, 1, 2`. The string may be a Gymnasium id or a name registered with `register_env`;
    a callable gets the `env_config` (an `EnvContext`) without `num_agents`. The class's
    config takes `num_agents` (default 1) and passes the rest to each copy.

    Each agent acts only when its id is in `action_dict` and gets an observation only then.
    An agent whose copy terminates or truncates is done: it leaves `agents` and must not get
    actions any more. The episode ends when all agents are done: `truncateds["__all__"]` if
    the agents that ended in that step were all truncated, else `terminateds["__all__"]`
    (RLlib sets both when all are truncated). `reset(seed=s)` seeds copy
    `i` with `s + i` (RLlib gives all copies the same seed, which makes them identical).
    """

    if isinstance(env_name_or_creator, str):
        creator = get_env_creator(env_name_or_creator)
        name = env_name_or_creator
    elif callable(env_name_or_creator):
        creator = env_name_or_creator
        name = getattr(env_name_or_creator, "__name__", "env")
    else:
        raise TypeError(
            f"make_multi_agent() takes a Gymnasium id, a registered env name or a creator "
            f"function; got {env_name_or_creator!r}."
        )

    class MultiEnv(MultiAgentEnv):
        default_num_agents = 1

        def __init__(self, config: dict | None = None):
            super().__init__()
            config = EnvContext({}) if config is None else config
            num = int(config.get("num_agents", self.default_num_agents))
            if num < 1:
                raise EnvError(f"{type(self).__name__}: num_agents must be >= 1, got {num}.")
            sub = {k: v for k, v in config.items() if k != "num_agents"}
            ctx = EnvContext(
                sub,
                worker_index=getattr(config, "worker_index", 0),
                vector_index=getattr(config, "vector_index", 0),
                num_workers=getattr(config, "num_workers", 0),
            )
            self.envs = [creator(ctx) for _ in range(num)]
            self.possible_agents = list(range(num))
            self.agents = list(self.possible_agents)
            self.observation_spaces = {i: e.observation_space for i, e in enumerate(self.envs)}
            self.action_spaces = {i: e.action_space for i, e in enumerate(self.envs)}
            self.render_mode = getattr(self.envs[0], "render_mode", None)
            self.terminateds: set[int] = set()
            self.truncateds: set[int] = set()

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            self.terminateds, self.truncateds = set(), set()
            self.agents = list(self.possible_agents)
            obs, infos = {}, {}
            for i, env in enumerate(self.envs):
                obs[i], infos[i] = env.reset(
                    seed=None if seed is None else seed + i, options=options
                )
            return obs, infos

        def step(self, action_dict: dict):
            if not action_dict:
                raise EnvError(
                    f"{type(self).__name__}.step() got an empty action dict; active "
                    f"agents: {self.agents!r}."
                )
            for i in action_dict:
                if i not in self.agents:
                    why = "is done" if i in self.possible_agents else "does not exist"
                    raise EnvError(
                        f"{type(self).__name__}.step() got an action for agent {i!r}, which "
                        f"{why}; active agents: {self.agents!r}."
                    )
            obs, rew, term, trunc, info = {}, {}, {}, {}, {}
            ended_by_truncation = []
            for i, action in action_dict.items():
                obs[i], rew[i], term[i], trunc[i], info[i] = self.envs[i].step(action)
                if term[i] or trunc[i]:
                    (self.terminateds if term[i] else self.truncateds).add(i)
                    ended_by_truncation.append(not term[i])
            self.agents = [a for a in self.agents if a not in obs or not (term[a] or trunc[a])]
            over = not self.agents
            term[ALL] = over and not all(ended_by_truncation)
            trunc[ALL] = over and all(ended_by_truncation)
            return obs, rew, term, trunc, info

        def render(self):
            # Images side by side (or stacked when they are wider than high), as RLlib does.
            images = [e.render() for e in self.envs]
            if not images or images[0] is None:
                return None
            axis = 0 if images[0].shape[1] > images[0].shape[0] else 1
            return np.concatenate(images, axis=axis)

        def close(self):
            for env in self.envs:
                env.close()

    MultiEnv.__name__ = MultiEnv.__qualname__ = f"MultiAgent({name})"
    # A class made from an env name is stored in configs as that name (it has no import
    # path); one made from a creator function cannot be stored.
    MultiEnv.multi_agent_of = env_name_or_creator if isinstance(env_name_or_creator, str) else None
    return MultiEnv


# ---------------------------------------------------------------------------------------
# Checks a runner can call on the first reset/step (and tests on every step).


def space_mismatch(value: Any, space: gym.Space) -> str | None:
    """Why `value` is not in `space` (a short reason), or None when it is.

    Numeric values of the space's shape whose values fit are accepted whatever their dtype
    (float64 for a float32 Box, say): runners cast to the space's dtype.
    """
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(value, Mapping):
            return f"expected a dict with keys {sorted(space.spaces)}, got {type(value).__name__}"
        if set(value) != set(space.spaces):
            return f"expected dict keys {sorted(space.spaces)}, got {sorted(value)}"
        for k, s in space.spaces.items():
            why = space_mismatch(value[k], s)
            if why:
                return f"[{k!r}]: {why}"
        return None
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(space.spaces):
            return f"expected a tuple of {len(space.spaces)}, got {value!r:.80}"
        for i, (v, s) in enumerate(zip(value, space.spaces)):
            why = space_mismatch(v, s)
            if why:
                return f"[{i}]: {why}"
        return None
    if space.contains(value):
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return f"got {type(value).__name__}"
    if arr.dtype.kind not in "biuf":
        return f"got a non-numeric {type(value).__name__} ({arr.dtype})"
    shape = () if isinstance(space, gym.spaces.Discrete) else space.shape
    if arr.shape != shape:
        return f"got shape {arr.shape}, expected {shape}"
    if not np.all(np.isfinite(arr)):
        return f"got non-finite values {arr!r:.80}"
    if space.dtype is not None and np.issubdtype(space.dtype, np.integer):
        if not np.array_equal(arr, np.round(arr)):
            return f"got non-integer values {arr!r:.80}"
    cast = arr.astype(space.dtype) if space.dtype is not None else arr
    if space.contains(cast if shape else cast.item()):
        return None
    return f"value {arr!r:.80} is out of bounds"


def _name(env: Any) -> str:
    return type(env).__name__


def _check_keys(env: Any, d: Any, what: str, where: str, extra: Collection = ()) -> None:
    if not isinstance(d, Mapping):
        raise EnvError(
            f"{_name(env)}.{where} must return a dict keyed by agent id for {what}, got "
            f"{type(d).__name__}."
        )
    possible = list(getattr(env, "possible_agents", []) or [])
    for key in d:
        if key in extra:
            continue
        if key not in possible:
            hint = did_you_mean(str(key), [str(a) for a in possible])
            raise EnvError(
                f"{_name(env)}.{where} returned {what} for agent {key!r}, which is not in "
                f"possible_agents {possible!r}.{hint}"
            )


def _check_obs_dict(env: Any, obs: Any, where: str, allow_nonfinite: bool = False) -> None:
    _check_keys(env, obs, "observations", where)
    for agent, o in obs.items():
        if allow_nonfinite and not finite(o):
            continue  # the runner's own checks handle it (raise or drop)
        space = env.get_observation_space(agent)
        why = space_mismatch(o, space)
        if why:
            raise EnvError(
                f"{_name(env)}.{where}: the observation of agent {agent!r} is outside its "
                f"observation space {space}: {why}."
            )


def check_multi_agent_reset(env: Any, obs: Any, infos: Any, allow_nonfinite: bool = False) -> None:
    """Raise an `EnvError` naming the agent and the problem if a reset result is malformed.

    Checks: both are dicts keyed by ids in `possible_agents` (`infos` may also hold
    `"__common__"`), every observation lies in its agent's observation space, and at least
    one agent got an observation (else nobody could act).
    """
    _check_obs_dict(env, obs, "reset()", allow_nonfinite)
    _check_keys(env, infos, "infos", "reset()", extra=(COMMON,))
    if not obs:
        raise EnvError(f"{_name(env)}.reset() returned no observation: no agent can act.")


def check_multi_agent_step(
    env: Any,
    obs: Any,
    rewards: Any,
    terminateds: Any,
    truncateds: Any,
    infos: Any,
    allow_nonfinite: bool = False,
) -> None:
    """Raise an `EnvError` naming the agent and the problem if a step result is malformed.

    Checks: all five are dicts keyed by ids in `possible_agents`; `terminateds` holds
    `"__all__"` (`truncateds` may lack it, as in RLlib: False) and per-agent flags as
    bools; rewards are real numbers; every observation lies in its agent's observation
    space; and an episode that is not over has at least one agent to act.
    `allow_nonfinite`: NaN/inf observations and rewards pass (an EnvRunner checks those
    itself, on every step).
    """
    where = "step()"
    for flags, what in ((terminateds, "terminateds"), (truncateds, "truncateds")):
        if not isinstance(flags, Mapping):
            raise EnvError(f"{_name(env)}.{where} must return a dict for {what}, got {flags!r}")
        if ALL not in flags and what == "terminateds":  # RLlib: truncateds may lack it
            raise EnvError(
                f"{_name(env)}.{where} returned {what} without the '__all__' key (True when "
                f"the episode is over for all agents): got {dict(flags)!r}."
            )
        _check_keys(env, flags, what, where, extra=(ALL,))
        for agent, flag in flags.items():
            if not isinstance(flag, (bool, np.bool_)):
                raise EnvError(
                    f"{_name(env)}.{where}: {what}[{agent!r}] must be a bool, got {flag!r}."
                )
    _check_obs_dict(env, obs, where, allow_nonfinite)
    _check_keys(env, rewards, "rewards", where)
    for agent, r in rewards.items():
        if (
            not isinstance(r, numbers.Real)
            or isinstance(r, bool)
            or not (allow_nonfinite or np.isfinite(r))
        ):
            raise EnvError(
                f"{_name(env)}.{where}: the reward of agent {agent!r} must be a finite real "
                f"number, got {r!r}."
            )
    _check_keys(env, infos, "infos", where, extra=(COMMON,))
    if not (terminateds[ALL] or truncateds.get(ALL, False)) and not agents_to_act(
        obs, terminateds, truncateds
    ):
        raise EnvError(
            f"{_name(env)}.{where} returned no observation for an agent that is not done, "
            "but neither terminateds['__all__'] nor truncateds['__all__'] is True: no agent "
            "can act next."
        )


def agents_to_act(
    obs: Mapping, terminateds: Mapping | None = None, truncateds: Mapping | None = None
) -> list[AgentID]:
    """The agents that must get an action next: those in `obs` that are not done."""
    terminateds = terminateds or {}
    truncateds = truncateds or {}
    if terminateds.get(ALL) or truncateds.get(ALL):
        return []
    return [a for a in obs if not terminateds.get(a) and not truncateds.get(a)]


def check_action_dict(
    action_dict: Any, expected_agents: Iterable[AgentID], env: Any = None
) -> None:
    """Raise an `EnvError` unless `action_dict` covers exactly `expected_agents`.

    The message names the missing and the extra agent ids. With `env`, each action must
    also lie in its agent's action space.
    """
    expected = list(expected_agents)
    where = f"{_name(env)}.step()" if env is not None else "step()"
    if not isinstance(action_dict, Mapping):
        raise EnvError(f"{where} takes a dict of actions keyed by agent id, got {action_dict!r}")
    missing = [a for a in expected if a not in action_dict]
    extra = [a for a in action_dict if a not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no action for agent(s) {missing!r}")
        if extra:
            parts.append(f"actions for agent(s) {extra!r} that were not asked to act")
        raise EnvError(
            f"{where}: the action dict must hold exactly the agents asked to act "
            f"{expected!r}: {' and '.join(parts)}."
        )
    if env is not None:
        for agent, action in action_dict.items():
            space = env.get_action_space(agent)
            why = space_mismatch(action, space)
            if why:
                raise EnvError(
                    f"{where}: the action of agent {agent!r} is outside its action space "
                    f"{space}: {why}."
                )


def _random_action(space: gym.Space, obs: Any, rng: np.random.Generator) -> Any:
    mask = obs.get("action_mask") if isinstance(obs, Mapping) else None
    if mask is not None and isinstance(space, gym.spaces.Discrete):
        valid = np.flatnonzero(np.asarray(mask) > 0)
        if len(valid):
            return int(space.start + rng.choice(valid))
    return space.sample()


def check_multi_agent_env(env: MultiAgentEnv, num_steps: int = 300, seed: int = 0) -> int:
    """Run random (action-mask respecting) episodes and check every reset and step.

    Besides the per-call checks this tracks episodes: a done agent must not appear again
    before the next reset. Returns the number of finished episodes.
    """
    rng = np.random.default_rng(seed)
    for i, agent in enumerate(env.possible_agents):
        env.get_observation_space(agent)
        env.get_action_space(agent).seed(seed + i)
    obs, infos = env.reset(seed=seed)
    check_multi_agent_reset(env, obs, infos)
    done: set = set()
    episodes = 0
    for _ in range(num_steps):
        actors = agents_to_act(obs)
        actions = {a: _random_action(env.get_action_space(a), obs[a], rng) for a in actors}
        obs, rewards, terms, truncs, infos = env.step(actions)
        check_multi_agent_step(env, obs, rewards, terms, truncs, infos)
        back = [a for a in obs if a in done]
        if back:
            raise EnvError(
                f"{_name(env)}.step() returned an observation for agent {back[0]!r}, which "
                "was already done in this episode."
            )
        done |= {a for a in obs if terms.get(a) or truncs.get(a)}
        if terms[ALL] or truncs.get(ALL, False):
            episodes += 1
            done = set()
            obs, infos = env.reset()
            check_multi_agent_reset(env, obs, infos)
        else:
            obs = {a: obs[a] for a in agents_to_act(obs, terms, truncs)}
    return episodes
