"""PettingZooEnv (AEC) and ParallelPettingZooEnv on real PettingZoo envs and small custom ones."""

import warnings

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv

with warnings.catch_warnings():
    # PettingZoo 1.27 prefers `pettingzoo.make("aec", ...)`; the module API works from 1.24.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.classic import connect_four_v3, rps_v2, tictactoe_v3

from scalerl.env.multi_agent_env import MultiAgentEnv, check_multi_agent_env
from scalerl.env.wrappers import ParallelPettingZooEnv, PettingZooEnv
from scalerl.utils.errors import EnvError

ROCK, PAPER, SCISSORS = 0, 1, 2


def _masked_choice(obs, rng):
    return int(rng.choice(np.flatnonzero(obs["action_mask"])))


class Relay(AECEnv):
    """Agents a, b, c take turns in that order. An action k gives k + 1 to every other
    live agent. b terminates after its `b_turns`-th action; after the last agent in the
    order has acted `cycles` times, everyone left is truncated. b's action space differs."""

    metadata = {"name": "relay_v0", "render_modes": []}

    def __init__(self, b_turns=2, cycles=3):
        super().__init__()
        self.possible_agents = ["a", "b", "c"]
        self.b_turns, self.cycles = b_turns, cycles

    def observation_space(self, agent):
        return spaces.Discrete(100)

    def action_space(self, agent):
        return spaces.Discrete(5 if agent == "b" else 3)

    def observe(self, agent):
        return self.turns[agent]

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: {} for a in self.agents}
        self.turns = dict.fromkeys(self.agents, 0)
        self.agent_selection = "a"

    def step(self, action):
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0
        self._clear_rewards()
        self.turns[agent] += 1
        for other in self.agents:
            if other != agent:
                self.rewards[other] = action + 1
        if agent == "b" and self.turns["b"] == self.b_turns:
            self.terminations["b"] = True
        order = [a for a in self.possible_agents if a in self.agents]
        if agent == order[-1] and self.turns[agent] >= self.cycles:
            for a in self.agents:
                self.truncations[a] = not self.terminations[a]
        self._accumulate_rewards()
        self.agent_selection = order[(order.index(agent) + 1) % len(order)]
        self._deads_step_first()


class Fade(ParallelEnv):
    """Parallel env: x terminates after `x_steps` steps, y is truncated after `y_steps`."""

    metadata = {"name": "fade_v0"}

    def __init__(self, x_steps=2, y_steps=4):
        self.possible_agents = ["x", "y"]
        self.x_steps, self.y_steps = x_steps, y_steps

    def observation_space(self, agent):
        return spaces.Box(0.0, 10.0, (1,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents)
        self.t += 1
        obs = {a: np.array([self.t], np.float32) for a in self.agents}
        rewards = {a: float(actions[a]) for a in self.agents}
        terms = {a: a == "x" and self.t >= self.x_steps for a in self.agents}
        truncs = {a: a == "y" and self.t >= self.y_steps for a in self.agents}
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, {a: {} for a in obs}


# --- PettingZooEnv (AEC) -----------------------------------------------------------------


def test_aec_spaces_from_the_env():
    env = PettingZooEnv(tictactoe_v3.env())
    raw = tictactoe_v3.env()
    assert isinstance(env, MultiAgentEnv)
    assert env.possible_agents == ["player_1", "player_2"] == raw.possible_agents
    for agent in env.possible_agents:
        assert env.get_observation_space(agent) == raw.observation_space(agent)
        assert env.get_action_space(agent) == spaces.Discrete(9)
    relay = PettingZooEnv(Relay())
    assert relay.get_action_space("b") == spaces.Discrete(5)
    assert relay.get_action_space("a") == spaces.Discrete(3)


def test_aec_turn_order_and_game_end():
    env = PettingZooEnv(tictactoe_v3.env())
    obs, infos = env.reset(seed=0)
    assert list(obs) == ["player_1"] and list(infos) == ["player_1"]
    assert obs["player_1"]["action_mask"].tolist() == [1] * 9
    # player_1 takes 0, 1, 2 (a line), player_2 takes 3 and 4.
    for i, field in enumerate([0, 3, 1, 4]):
        mover = "player_1" if i % 2 == 0 else "player_2"
        other = "player_2" if mover == "player_1" else "player_1"
        assert list(obs) == [mover]
        obs, rew, term, trunc, _ = env.step({mover: field})
        assert list(obs) == [other] and rew == {other: 0.0}
        assert term == {other: False, "__all__": False}
        assert trunc == {other: False, "__all__": False}
        assert obs[other]["action_mask"][field] == 0
    obs, rew, term, trunc, _ = env.step({"player_1": 2})
    assert sorted(obs) == ["player_1", "player_2"]  # both report their final observation
    assert rew == {"player_1": 1.0, "player_2": -1.0}
    assert term == {"player_1": True, "player_2": True, "__all__": True}
    assert trunc == {"player_1": False, "player_2": False, "__all__": False}
    with pytest.raises(EnvError, match="no agent to act"):
        env.step({"player_2": 5})
    obs, _ = env.reset(seed=1)
    assert list(obs) == ["player_1"]


def test_aec_action_for_the_wrong_agent():
    env = PettingZooEnv(tictactoe_v3.env())
    env.reset(seed=0)
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['player_1'\] and actions"):
        env.step({"player_2": 0})
    with pytest.raises(EnvError, match=r"actions for agent\(s\) \['player_2'\] that were not"):
        env.step({"player_1": 0, "player_2": 1})
    with pytest.raises(EnvError, match="action of agent 'player_1' is outside"):
        env.step({"player_1": 9})


def test_aec_illegal_move_ends_the_game():
    env = PettingZooEnv(tictactoe_v3.env())
    env.reset(seed=0)
    env.step({"player_1": 4})
    obs, rew, term, _, _ = env.step({"player_2": 4})  # occupied: PettingZoo's penalty
    assert rew == {"player_1": 0.0, "player_2": -1.0}
    assert term["__all__"] and sorted(obs) == ["player_1", "player_2"]


def test_aec_rewards_between_turns_are_accumulated():
    """rps: both rewards are given after player_1's move; player_1's arrives on its turn."""
    env = PettingZooEnv(rps_v2.env(max_cycles=2))
    obs, _ = env.reset(seed=0)
    assert list(obs) == ["player_0"]
    obs, rew, *_ = env.step({"player_0": ROCK})
    assert list(obs) == ["player_1"] and rew == {"player_1": 0.0}
    obs, rew, *_ = env.step({"player_1": PAPER})  # paper beats rock
    assert list(obs) == ["player_0"] and rew == {"player_0": -1.0}
    assert int(obs["player_0"]) == PAPER  # the opponent's last move
    obs, rew, *_ = env.step({"player_0": SCISSORS})
    assert list(obs) == ["player_1"] and rew == {"player_1": 1.0}  # earned a turn ago
    obs, rew, term, trunc, _ = env.step({"player_1": SCISSORS})  # draw; max_cycles reached
    assert sorted(obs) == ["player_0", "player_1"]
    assert rew == {"player_0": 0.0, "player_1": 0.0}
    assert trunc == {"player_0": True, "player_1": True, "__all__": True}
    assert term == {"player_0": False, "player_1": False, "__all__": False}


def test_aec_dead_agents_and_rewards_with_a_custom_env():
    env = PettingZooEnv(Relay(b_turns=2, cycles=3))
    obs, _ = env.reset()
    assert list(obs) == ["a"] and env.agents == ["a", "b", "c"]
    # (actor, action) -> (obs agents, rewards, terminated agents, truncated agents)
    script = [
        (("a", 0), (["b"], {"b": 1.0}, [], [])),
        (("b", 4), (["c"], {"c": 1.0 + 5.0}, [], [])),
        (("c", 1), (["a"], {"a": 5.0 + 2.0}, [], [])),
        (("a", 2), (["b"], {"b": 2.0 + 3.0}, [], [])),
        (("b", 0), (["b", "c"], {"b": 0.0, "c": 3.0 + 1.0}, ["b"], [])),  # b is done
        (("c", 2), (["a"], {"a": 1.0 + 3.0}, [], [])),  # b is gone: no reward for it
        (("a", 1), (["c"], {"c": 2.0}, [], [])),
        (("c", 0), (["a", "c"], {"a": 1.0, "c": 0.0}, [], ["a", "c"])),
    ]
    for (actor, action), (want_obs, want_rew, want_term, want_trunc) in script:
        assert list(obs) == [actor] or actor in obs
        obs, rew, term, trunc, _ = env.step({actor: action})
        assert list(obs) == want_obs, (actor, action)
        assert rew == want_rew, (actor, action)
        assert [a for a in want_obs if term[a]] == want_term
        assert [a for a in want_obs if trunc[a]] == want_trunc
        obs = {a: o for a, o in obs.items() if not (term[a] or trunc[a])}
        if actor == "b" and action == 0:
            assert env.agents == ["a", "c"] and not term["__all__"]
    assert trunc["__all__"] and not term["__all__"] and env.agents == []


def test_aec_reward_sums_match_a_plain_pettingzoo_loop():
    """Random masked connect-four games: the wrapper reports every reward exactly once."""
    for seed in range(3):
        raw, rng = connect_four_v3.env(), np.random.default_rng(seed)
        raw.reset(seed=seed)
        raw_totals, raw_moves = dict.fromkeys(raw.possible_agents, 0.0), 0
        for agent in raw.agent_iter():
            o, r, term, trunc, _ = raw.last()
            raw_totals[agent] += r
            action = None if term or trunc else _masked_choice(o, rng)
            raw_moves += action is not None
            raw.step(action)

        env, rng = PettingZooEnv(connect_four_v3.env()), np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed)
        totals, moves = dict.fromkeys(env.possible_agents, 0.0), 0
        while True:
            (agent,) = obs
            obs, rew, term, trunc, _ = env.step({agent: _masked_choice(obs[agent], rng)})
            moves += 1
            for a, r in rew.items():
                totals[a] += r
            if term["__all__"] or trunc["__all__"]:
                break
            obs = {a: o for a, o in obs.items() if not (term[a] or trunc[a])}
        assert moves == raw_moves and totals == raw_totals
        assert sorted(totals.values()) in ([-1.0, 1.0], [0.0, 0.0])


# --- ParallelPettingZooEnv ---------------------------------------------------------------


def test_parallel_rps():
    env = ParallelPettingZooEnv(rps_v2.parallel_env(max_cycles=2))
    assert env.possible_agents == ["player_0", "player_1"]
    assert env.get_observation_space("player_0") == spaces.Discrete(4)
    assert env.get_action_space("player_1") == spaces.Discrete(3)
    obs, infos = env.reset(seed=0)
    assert sorted(obs) == ["player_0", "player_1"] and sorted(infos) == sorted(obs)
    obs, rew, term, trunc, _ = env.step({"player_0": SCISSORS, "player_1": PAPER})
    assert rew == {"player_0": 1.0, "player_1": -1.0}
    assert int(obs["player_0"]) == PAPER and int(obs["player_1"]) == SCISSORS
    assert not term["__all__"] and not trunc["__all__"]
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['player_1'\]"):
        env.step({"player_0": ROCK})
    obs, rew, term, trunc, _ = env.step({"player_0": ROCK, "player_1": ROCK})
    assert rew == {"player_0": 0.0, "player_1": 0.0}
    assert trunc == {"player_0": True, "player_1": True, "__all__": True}
    assert term == {"player_0": False, "player_1": False, "__all__": False}


def test_parallel_agents_finishing_at_different_times():
    env = ParallelPettingZooEnv(Fade(x_steps=2, y_steps=4))
    obs, _ = env.reset()
    assert sorted(obs) == ["x", "y"]
    env.step({"x": 1, "y": 0})
    obs, rew, term, trunc, _ = env.step({"x": 1, "y": 1})
    assert sorted(obs) == ["x", "y"] and term == {"x": True, "y": False, "__all__": False}
    assert env.agents == ["y"]
    with pytest.raises(EnvError, match=r"\['x'\] that were not asked to act"):
        env.step({"x": 0, "y": 0})
    obs, rew, term, trunc, _ = env.step({"y": 1})
    assert list(obs) == ["y"] and rew == {"y": 1.0} and not trunc["__all__"]
    obs, rew, term, trunc, _ = env.step({"y": 0})
    assert trunc == {"y": True, "__all__": True} and term == {"y": False, "__all__": False}


def test_parallel_last_agent_terminated_means_terminated_all():
    env = ParallelPettingZooEnv(Fade(x_steps=3, y_steps=1))
    env.reset()
    _, _, term, trunc, _ = env.step({"x": 0, "y": 0})
    assert trunc["y"] and not trunc["__all__"] and not term["__all__"]
    env.step({"x": 0})
    _, _, term, trunc, _ = env.step({"x": 0})
    assert term == {"x": True, "__all__": True} and not trunc["__all__"]


def test_parallel_mixed_final_step_still_ends_the_episode():
    env = ParallelPettingZooEnv(Fade(x_steps=2, y_steps=2))  # x terminates, y truncated
    env.reset()
    env.step({"x": 0, "y": 0})
    _, _, term, trunc, _ = env.step({"x": 0, "y": 0})
    assert term == {"x": True, "y": False, "__all__": True}
    assert trunc == {"x": False, "y": True, "__all__": False}


# --- random rollouts to the end, and errors ----------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: PettingZooEnv(tictactoe_v3.env()),
        lambda: PettingZooEnv(connect_four_v3.env()),
        lambda: PettingZooEnv(rps_v2.env(max_cycles=5)),
        lambda: PettingZooEnv(rps_v2.env(num_actions=5, max_cycles=3)),
        lambda: PettingZooEnv(Relay()),
        lambda: ParallelPettingZooEnv(rps_v2.parallel_env(max_cycles=4)),
        lambda: ParallelPettingZooEnv(Fade()),
    ],
    ids=["tictactoe", "connect4", "rps", "rpsls", "relay", "rps-parallel", "fade"],
)
def test_random_rollouts_to_the_end(make):
    assert check_multi_agent_env(make(), num_steps=300, seed=2) >= 3


def test_env_without_possible_agents_is_refused():
    class NoAgents:
        def observation_space(self, agent):
            return spaces.Discrete(2)

    with pytest.raises(EnvError, match="needs a PettingZoo env with `possible_agents`"):
        PettingZooEnv(NoAgents())
    with pytest.raises(EnvError, match="possible_agents"):
        ParallelPettingZooEnv(NoAgents())
