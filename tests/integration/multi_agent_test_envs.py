"""Small deterministic multi-agent envs for the multi-agent integration tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class IndependentCartPoles(gym.Env):
    """Agents 0..n-1 each balance their own CartPole; an agent whose pole falls is done and
    no longer observes; the episode ends when all are done."""

    def __init__(self, config=None):
        self.n = (config or {}).get("num_agents", 2)
        self.possible_agents = list(range(self.n))
        self.envs = [gym.make("CartPole-v1") for _ in range(self.n)]
        self.observation_spaces = {i: e.observation_space for i, e in enumerate(self.envs)}
        self.action_spaces = {i: e.action_space for i, e in enumerate(self.envs)}

    def reset(self, *, seed=None, options=None):
        self.done = set()
        return {
            i: e.reset(seed=None if seed is None else seed + i)[0] for i, e in enumerate(self.envs)
        }, {}

    def step(self, actions):
        obs, rew, term, trunc = {}, {}, {}, {}
        for i, a in actions.items():
            o, r, te, tr, _ = self.envs[i].step(a)
            rew[i], term[i], trunc[i] = r, te, tr
            if te or tr:
                self.done.add(i)
            else:
                obs[i] = o
        over = len(self.done) == self.n
        term["__all__"] = over and all(term.get(i, True) for i in actions)
        trunc["__all__"] = over and not term["__all__"]
        return obs, rew, term, trunc, {}


class PayTheOther(gym.Env):
    """Turn-based: "p1" and "p2" alternate; each move pays the *other* player 1 (so every
    reward arrives while its receiver is waiting), and the mover gets action * 0.5.
    Ends (terminated) after 6 moves."""

    def __init__(self, config=None):
        self.possible_agents = ["p1", "p2"]
        self.observation_spaces = {a: gym.spaces.Discrete(7) for a in self.possible_agents}
        self.action_spaces = {a: gym.spaces.Discrete(2) for a in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"p1": 0}, {}

    def step(self, actions):
        ((mover, a),) = actions.items()
        other = "p2" if mover == "p1" else "p1"
        self.t += 1
        rewards = {other: 1.0, mover: 0.5 * int(a)}
        done = self.t >= 6
        obs = {} if done else {other: self.t}
        return obs, rewards, {"__all__": done}, {"__all__": False}, {}


class MixedSpaces(gym.Env):
    """ "walker" (Box(3) obs, Discrete(2) actions) acts every step; "pusher" (Discrete(5) obs,
    Box(2) actions) joins at step 2 and finishes at step 5; truncated after 8 steps."""

    def __init__(self, config=None):
        self.possible_agents = ["walker", "pusher"]
        self.observation_spaces = {
            "walker": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
            "pusher": gym.spaces.Discrete(5),
        }
        self.action_spaces = {
            "walker": gym.spaces.Discrete(2),
            "pusher": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }

    def _walker_obs(self):
        return np.full(3, self.t / 10, np.float32)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"walker": self._walker_obs()}, {}

    def step(self, actions):
        assert self.action_spaces["walker"].contains(actions["walker"])
        if "pusher" in actions:
            assert self.action_spaces["pusher"].contains(actions["pusher"]), actions["pusher"]
        self.t += 1
        obs = {"walker": self._walker_obs()}
        rewards = {"walker": 1.0}
        terms = {"walker": False, "__all__": False}
        if 2 <= self.t < 5:
            obs["pusher"] = self.t
        if "pusher" in actions:
            rewards["pusher"] = -float(np.abs(actions["pusher"]).sum())
            terms["pusher"] = self.t >= 5
        truncs = {"__all__": self.t >= 8}
        return obs, rewards, terms, truncs, {}


class BadObsEnv(PayTheOther):
    """Returns an observation outside the declared Discrete(7) space."""

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"p1": 9}, {}


class Float64Walker(MixedSpaces):
    """The walker's observations come as float64 (its space says float32), as many envs do."""

    def _walker_obs(self):
        return np.full(3, self.t / 10, np.float64)
