"""PettingZoo environments (AEC and parallel) as `MultiAgentEnv`s, as RLlib wraps them.

PettingZoo is an optional dependency (`pip install scalerl[multiagent]`); nothing here
imports it: the wrappers take an env object and use its API.
"""

from __future__ import annotations

from typing import Any

from scalerl.env.multi_agent_env import (
    ALL,
    MultiAgentEnv,
    agents_to_act,
    check_action_dict,
)
from scalerl.utils.errors import EnvError


def _spaces(wrapper: MultiAgentEnv, env: Any) -> None:
    """Copy possible agents and their spaces from a PettingZoo env onto `wrapper`."""
    try:
        possible = list(env.possible_agents)
    except AttributeError:
        raise EnvError(
            f"{type(wrapper).__name__} needs a PettingZoo env with `possible_agents` (every "
            f"agent id that may appear); {type(env).__name__} has none."
        ) from None
    if not possible:
        raise EnvError(f"{type(wrapper).__name__}: {type(env).__name__}.possible_agents is empty.")
    wrapper.possible_agents = possible
    wrapper.agents = []
    wrapper.observation_spaces = {a: env.observation_space(a) for a in possible}
    wrapper.action_spaces = {a: env.action_space(a) for a in possible}
    wrapper.render_mode = getattr(env, "render_mode", None)
    wrapper.metadata = getattr(env, "metadata", {})


def _episode_flags(terminateds: dict, truncateds: dict, ended: list, over: bool) -> None:
    """Set `"__all__"`: at the episode end, truncated iff every agent ended in this step was
    truncated (not terminated), else terminated; exactly one of the two is True then."""
    cut_off = all(truncateds.get(a, False) and not terminateds.get(a, False) for a in ended)
    terminateds[ALL] = over and not cut_off
    truncateds[ALL] = over and cut_off


class PettingZooEnv(MultiAgentEnv):
    """A turn-based PettingZoo AEC env (`pettingzoo.AECEnv`) as a `MultiAgentEnv`.

    Only the agent to act (`env.agent_selection`) appears in the observation dict, and
    `step({agent: action})` takes exactly its action. The reward reported with an agent's
    observation is everything it earned since its last action (PettingZoo's cumulative
    reward, so rewards given between its turns are never lost). An agent that terminates
    or truncates is reported once with its final observation, summed reward and flag;
    the wrapper then steps it with `None` as PettingZoo requires, so several agents may
    appear in one step's dicts (at the end of a game: all of them). Spaces come from
    `env.observation_space(agent)` / `env.action_space(agent)` for every agent in
    `env.possible_agents`; they may differ per agent.

    Example:
        >>> from pettingzoo.classic import tictactoe_v3
        >>> env = PettingZooEnv(tictactoe_v3.env())
        >>> obs, infos = env.reset(seed=0)
        >>> list(obs)
        ['player_1']
    """

    def __init__(self, env: Any):
        super().__init__()
        self.env = env
        _spaces(self, env)
        self._to_act: list = []

    def _collect(self) -> tuple[dict, dict, dict, dict, dict]:
        """Report agents from `agent_selection` on: dead ones (then step them with None)
        until one that must act, or none is left."""
        obs, rewards, terminateds, truncateds, infos = {}, {}, {}, {}, {}
        while self.env.agents:
            agent = self.env.agent_selection
            o, r, term, trunc, info = self.env.last()
            obs[agent], rewards[agent], infos[agent] = o, float(r), info
            terminateds[agent], truncateds[agent] = bool(term), bool(trunc)
            if not (term or trunc):
                break
            self.env.step(None)
        return obs, rewards, terminateds, truncateds, infos

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.env.reset(seed=seed, options=options)
        obs, _, terms, truncs, infos = self._collect()
        self._to_act = agents_to_act(obs, terms, truncs)
        self.agents = list(self.env.agents)
        return obs, infos

    def step(self, action_dict: dict):
        if not self._to_act:
            raise EnvError(f"{type(self).__name__}.step() called with no agent to act; reset().")
        check_action_dict(action_dict, self._to_act, self)
        self.env.step(action_dict[self._to_act[0]])
        obs, rewards, terminateds, truncateds, infos = self._collect()
        ended = [a for a in obs if terminateds[a] or truncateds[a]]
        _episode_flags(terminateds, truncateds, ended, over=not self.env.agents)
        self._to_act = agents_to_act(obs, terminateds, truncateds)
        self.agents = list(self.env.agents)
        return obs, rewards, terminateds, truncateds, infos

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class ParallelPettingZooEnv(MultiAgentEnv):
    """A PettingZoo parallel env (`pettingzoo.ParallelEnv`) as a `MultiAgentEnv`.

    All live agents act at once. The dicts are PettingZoo's, plus `"__all__"`: the episode
    is over when no agent is left to act (PettingZoo drops done agents from `agents`);
    then `truncateds["__all__"]` is True if every agent that ended in the last step was
    truncated, else `terminateds["__all__"]`. Spaces come from
    `env.observation_space(agent)` / `env.action_space(agent)` for every agent in
    `env.possible_agents`.

    Example:
        >>> from pettingzoo.classic import rps_v2
        >>> env = ParallelPettingZooEnv(rps_v2.parallel_env())
        >>> obs, infos = env.reset(seed=0)
        >>> sorted(obs)
        ['player_0', 'player_1']
    """

    def __init__(self, env: Any):
        super().__init__()
        self.par_env = env
        _spaces(self, env)
        self._to_act: list = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self._to_act = list(obs)
        self.agents = list(self.par_env.agents)
        return dict(obs), dict(infos or {})

    def step(self, action_dict: dict):
        if not self._to_act:
            raise EnvError(f"{type(self).__name__}.step() called with no agent to act; reset().")
        check_action_dict(action_dict, self._to_act, self)
        obs, rewards, terms, truncs, infos = self.par_env.step(action_dict)
        rewards = {a: float(r) for a, r in rewards.items()}
        terminateds = {a: bool(t) for a, t in terms.items()}
        truncateds = {a: bool(t) for a, t in truncs.items()}
        ended = [
            a for a in {**terminateds, **truncateds} if terminateds.get(a) or truncateds.get(a)
        ]
        self._to_act = agents_to_act(obs, terminateds, truncateds)
        _episode_flags(terminateds, truncateds, ended, over=not self._to_act)
        self.agents = list(self.par_env.agents)
        return dict(obs), rewards, terminateds, truncateds, dict(infos)

    def render(self) -> Any:
        return self.par_env.render()

    def close(self) -> None:
        self.par_env.close()
