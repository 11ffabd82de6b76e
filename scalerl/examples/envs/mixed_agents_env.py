"""A small deterministic multi-agent env whose agents differ in spaces and lifetimes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from scalerl.env.multi_agent_env import MultiAgentEnv, agents_to_act, check_action_dict
from scalerl.examples.envs._config import check_config
from scalerl.utils.errors import EnvError


class MixedAgentsEnv(MultiAgentEnv):
    """Four agents with different spaces that act at different times (for runner tests).

    `t` counts the steps of the episode (0 after reset). Every agent's observation is a
    function of `t` and each reward a function of the agent's action and `t` at the time
    of its observation, so episodes are deterministic given the actions:

    - "walker": observation Box(0, 1, (2,)) `[t / L, (t % 3) / 2]`, action Discrete(3); in
      the obs dict at every t; reward 1 if `a == t % 3`.
    - "scout": observation Discrete(5) `min(t, 4)`, action Box(-1, 1, (2,)); in the obs
      dict while t <= S; reward `-sum(abs(a))`.
    - "latecomer": observation MultiDiscrete([L + 1, 2]) `[t, t % 2]`, action
      MultiDiscrete([2, 3]); in the obs dict from t == J on; reward 1 if `a[0] == t % 2`.
    - "blinker": observation Dict(t=Box(0, L, (1,)), parity=Discrete(2)), action
      Discrete(2); in the obs dict at even t and at t == L; reward 1 if `a == (t // 2) % 2`.

    with L = "episode_len" (6), S = "scout_steps" (2), J = "latecomer_joins" (3). The scout
    *terminates* early: its observation at t == S comes with `terminateds["scout"]` True and
    it does not appear again. The latecomer joins at t == J (its first observation). The
    blinker stays in the episode but only acts at even t. At t == L every agent still in
    the episode gets its final observation with its `truncateds` flag, and
    `truncateds["__all__"]` is True. `agents` lists the agents in the episode (joined and not
    done). Rewards go to the agents that acted in the step. Actions must come for exactly
    the agents of the last observation dict that are not done (else an `EnvError`).
    """

    def __init__(self, config: dict | None = None):
        super().__init__()
        config = check_config(
            "MixedAgentsEnv", config, {"episode_len": 6, "scout_steps": 2, "latecomer_joins": 3}
        )
        self.episode_len = L = int(config["episode_len"])
        self.scout_steps = int(config["scout_steps"])
        self.latecomer_joins = int(config["latecomer_joins"])
        if not (0 < self.scout_steps < L and 0 <= self.latecomer_joins < L):
            raise EnvError(
                "MixedAgentsEnv needs 0 < scout_steps < episode_len and 0 <= latecomer_joins "
                f"< episode_len; got {config}."
            )
        self.possible_agents = ["walker", "scout", "latecomer", "blinker"]
        self.observation_spaces = {
            "walker": gym.spaces.Box(0.0, 1.0, (2,), np.float32),
            "scout": gym.spaces.Discrete(5),
            "latecomer": gym.spaces.MultiDiscrete([L + 1, 2]),
            "blinker": gym.spaces.Dict(
                {
                    "t": gym.spaces.Box(0.0, float(L), (1,), np.float32),
                    "parity": gym.spaces.Discrete(2),
                }
            ),
        }
        self.action_spaces = {
            "walker": gym.spaces.Discrete(3),
            "scout": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
            "latecomer": gym.spaces.MultiDiscrete([2, 3]),
            "blinker": gym.spaces.Discrete(2),
        }
        self.t = 0
        self.agents = []
        self._to_act: list[str] = []

    def _observe(self, agent: str) -> object:
        t, L = self.t, self.episode_len
        if agent == "walker":
            return np.array([t / L, (t % 3) / 2], np.float32)
        if agent == "scout":
            return min(t, 4)
        if agent == "latecomer":
            return np.array([t, t % 2], np.int64)
        return {"t": np.array([t], np.float32), "parity": t % 2}

    def _present(self) -> list[str]:
        """The agents in the obs dict at the current t."""
        t, out = self.t, ["walker"]
        if t <= self.scout_steps:
            out.append("scout")
        if t >= self.latecomer_joins:
            out.append("latecomer")
        if t % 2 == 0:
            out.append("blinker")
        return out

    def _reward(self, agent: str, action: object, t: int) -> float:
        if agent == "walker":
            return float(int(action) == t % 3)
        if agent == "scout":
            return -float(np.abs(np.asarray(action, np.float64)).sum())
        if agent == "latecomer":
            return float(int(np.asarray(action)[0]) == t % 2)
        return float(int(action) == (t // 2) % 2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        present = self._present()
        self.agents = list(present)
        self._to_act = present
        return {a: self._observe(a) for a in present}, {a: {} for a in present}

    def step(self, action_dict: dict):
        if not self._to_act:
            raise EnvError("MixedAgentsEnv.step() called after the episode ended; reset() first.")
        check_action_dict(action_dict, self._to_act, self)
        rewards = {a: self._reward(a, action_dict[a], self.t) for a in self._to_act}
        self.t += 1
        last = self.t >= self.episode_len
        present = self._present()
        if self.t >= self.latecomer_joins and "latecomer" not in self.agents:
            self.agents.append("latecomer")
        if last:
            present = list(self.agents)
        obs = {a: self._observe(a) for a in present}
        terminateds = {"__all__": False}
        truncateds = {a: last for a in present} | {"__all__": last}
        if self.t == self.scout_steps:
            terminateds["scout"] = True
            self.agents.remove("scout")
        if last:
            self.agents = []
        self._to_act = agents_to_act(obs, terminateds, truncateds)
        return obs, rewards, terminateds, truncateds, {a: {} for a in present}
