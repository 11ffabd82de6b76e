"""MultiAgentEnv API, make_multi_agent, and the reset/step/action-dict checks."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from scalerl import register_env
from scalerl.env import EnvContext
from scalerl.env.multi_agent_env import (
    MultiAgentEnv,
    agents_to_act,
    check_action_dict,
    check_multi_agent_env,
    check_multi_agent_reset,
    check_multi_agent_step,
    make_multi_agent,
    space_mismatch,
)
from scalerl.utils.errors import EnvError

BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


class TwoAgents(MultiAgentEnv):
    """'a' observes a Box, 'b' a Discrete; both act every step; episode of 3 steps."""

    def __init__(self, config=None):
        super().__init__()
        self.agents = self.possible_agents = ["a", "b"]
        self.observation_spaces = {"a": BOX, "b": spaces.Discrete(3)}
        self.action_spaces = {"a": spaces.Discrete(2), "b": spaces.Discrete(2)}
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return {"a": np.zeros(2, np.float32), "b": 0}, {}

    def step(self, action_dict):
        self.t += 1
        over = self.t >= 3
        obs = {"a": np.zeros(2, np.float32), "b": self.t % 3}
        flags = {"a": over, "b": over, "__all__": over}
        return obs, {"a": 1.0, "b": 0.0}, {"__all__": False}, flags, {}


class Countdown(gym.Env):
    """Single-agent env that terminates (or truncates) after `steps` steps."""

    def __init__(self, config):
        self.steps = int(config.get("steps", 3))
        self.truncate = bool(config.get("truncate", False))
        self.observation_space = spaces.Box(0.0, 100.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.config = dict(config)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.np_random.uniform(0, 1)], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.steps
        obs = np.array([self.t], np.float32)
        return obs, 1.0, end and not self.truncate, end and self.truncate, {}


# --- The API -----------------------------------------------------------------------------


def test_spaces_agents_and_counts():
    env = TwoAgents()
    assert env.get_observation_space("a") is BOX
    assert env.get_observation_space("b") == spaces.Discrete(3)
    assert env.get_action_space("b") == spaces.Discrete(2)
    assert env.num_agents == 2 and env.max_num_agents == 2
    env.agents = ["a"]
    assert env.num_agents == 1 and env.max_num_agents == 2
    assert isinstance(env, gym.Env)


def test_unknown_agent_space_names_the_agent():
    env = TwoAgents()
    with pytest.raises(EnvError, match=r"no entry for agent 'c'.*\['a', 'b'\]"):
        env.get_observation_space("c")
    with pytest.raises(EnvError, match="action_spaces has no entry for agent 'x'"):
        env.get_action_space("x")


def test_possible_agents_default_to_agents_and_lists_are_per_instance():
    class Plain(MultiAgentEnv):
        agents = ["p", "q"]

    first, second = Plain(), Plain()
    assert first.possible_agents == ["p", "q"]
    first.agents.remove("p")
    assert second.agents == ["p", "q"] and Plain.agents == ["p", "q"]
    assert MultiAgentEnv.agents == [] and MultiAgentEnv.possible_agents == []


def test_old_stack_shared_or_dict_spaces():
    class Shared(MultiAgentEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = BOX
            self.action_space = spaces.Dict({"x": spaces.Discrete(2), "y": spaces.Discrete(5)})

    env = Shared()
    assert env.get_observation_space("anyone") is BOX
    assert env.get_action_space("y") == spaces.Discrete(5)
    with pytest.raises(EnvError, match="declares no observation space"):
        MultiAgentEnv().get_observation_space("a")


def test_base_reset_seeds_and_step_is_abstract():
    env = MultiAgentEnv()
    assert env.reset(seed=3) == ({}, {})
    a = env.np_random.integers(1 << 30)
    env.reset(seed=3)
    assert env.np_random.integers(1 << 30) == a
    with pytest.raises(NotImplementedError):
        env.step({})


# --- make_multi_agent --------------------------------------------------------------------


def test_make_multi_agent_cartpole_ids_spaces_and_independent_steps():
    cls = make_multi_agent("CartPole-v1")
    env = cls({"num_agents": 3})
    assert isinstance(env, MultiAgentEnv)
    assert env.possible_agents == [0, 1, 2] and env.agents == [0, 1, 2]
    assert env.get_observation_space(2) == gym.make("CartPole-v1").observation_space
    assert env.get_action_space(0) == spaces.Discrete(2)
    obs, infos = env.reset(seed=5)
    assert sorted(obs) == [0, 1, 2] and sorted(infos) == [0, 1, 2]
    # Copy i is seeded with seed + i: distinct starts, reproducible.
    assert not np.array_equal(obs[0], obs[1])
    again, _ = cls({"num_agents": 3}).reset(seed=5)
    assert all(np.array_equal(obs[i], again[i]) for i in range(3))
    single, _ = gym.make("CartPole-v1").reset(seed=6)
    assert np.array_equal(obs[1], single)
    obs, rew, term, trunc, _ = env.step({1: 0})
    assert list(obs) == [1] and list(rew) == [1]
    assert term == {1: False, "__all__": False} and trunc == {1: False, "__all__": False}
    assert cls().possible_agents == [0]  # num_agents defaults to 1, as in RLlib


def test_make_multi_agent_agents_finish_early_and_episode_ends():
    def creator(config):
        return Countdown(config)

    env = make_multi_agent(creator)({"num_agents": 2, "steps": 2})
    env.reset(seed=0)
    env.step({0: 0, 1: 1})
    obs, rew, term, trunc, _ = env.step({0: 0})  # agent 0 ends, agent 1 waits
    assert list(obs) == [0] and term == {0: True, "__all__": False}
    assert trunc == {0: False, "__all__": False}
    assert env.agents == [1] and env.num_agents == 1
    with pytest.raises(EnvError, match="action for agent 0, which is done"):
        env.step({0: 0, 1: 0})
    with pytest.raises(EnvError, match="agent 7, which does not exist"):
        env.step({7: 0})
    with pytest.raises(EnvError, match="empty action dict"):
        env.step({})
    obs, _, term, trunc, _ = env.step({1: 0})
    assert term == {1: True, "__all__": True} and trunc == {1: False, "__all__": False}
    assert env.agents == []
    obs, _ = env.reset()
    assert sorted(obs) == [0, 1] and env.agents == [0, 1]


def test_make_multi_agent_all_truncated_sets_truncated_all_only():
    env = make_multi_agent(lambda c: Countdown(c))({"num_agents": 2, "steps": 1, "truncate": 1})
    env.reset()
    _, _, term, trunc, _ = env.step({0: 0, 1: 0})
    assert trunc == {0: True, 1: True, "__all__": True}
    assert term == {0: False, 1: False, "__all__": False}


def test_make_multi_agent_config_goes_to_each_copy_and_registered_names_work():
    seen = []

    def creator(config):
        seen.append(config)
        return Countdown(config)

    register_env("countdown_test_env", creator)
    ctx = EnvContext({"num_agents": 2, "steps": 4}, worker_index=3, vector_index=1)
    env = make_multi_agent("countdown_test_env")(ctx)
    assert len(seen) == 2 and all(dict(c) == {"steps": 4} for c in seen)
    assert seen[0].worker_index == 3 and seen[0].vector_index == 1
    assert ctx["num_agents"] == 2  # the caller's config is not changed
    assert env.envs[0].steps == 4
    with pytest.raises(EnvError, match="num_agents must be >= 1"):
        make_multi_agent(creator)({"num_agents": 0})
    with pytest.raises(TypeError, match="make_multi_agent"):
        make_multi_agent(42)


def test_make_multi_agent_render_concatenates_images():
    env = make_multi_agent("CartPole-v1")({"num_agents": 2, "render_mode": "rgb_array"})
    env.reset(seed=0)
    img = env.render()
    single = gym.make("CartPole-v1", render_mode="rgb_array")
    single.reset(seed=0)
    h, w, _ = single.render().shape
    assert w > h and img.shape == (2 * h, w, 3) and img.dtype == np.uint8  # stacked
    env.close()


# --- checks ------------------------------------------------------------------------------


def test_space_mismatch_reasons_and_dtype_leniency():
    assert space_mismatch(np.zeros(2, np.float64), BOX) is None  # cast by the runner
    assert "shape (3,)" in space_mismatch(np.zeros(3), BOX)
    assert "out of bounds" in space_mismatch(np.array([0.0, 2.0]), BOX)
    assert "non-finite" in space_mismatch(np.array([np.nan, 0.0]), BOX)
    assert space_mismatch(2, spaces.Discrete(3)) is None
    assert "out of bounds" in space_mismatch(3, spaces.Discrete(3))
    assert "non-integer" in space_mismatch(np.array([0.5, 1]), spaces.MultiDiscrete([2, 2]))
    assert "non-numeric" in space_mismatch("up", spaces.Discrete(4))
    nested = spaces.Dict({"m": spaces.Box(0, 1, (3,), np.float32), "o": BOX})
    assert "keys" in space_mismatch({"m": np.ones(3)}, nested)
    why = space_mismatch({"m": np.ones(3) * 2, "o": np.zeros(2)}, nested)
    assert why.startswith("['m']: ") and "out of bounds" in why
    tup = spaces.Tuple((spaces.Discrete(2), BOX))
    assert space_mismatch((1, np.zeros(2)), tup) is None
    assert space_mismatch((1,), tup).startswith("expected a tuple of 2")


def _ok_step():
    obs = {"a": np.zeros(2, np.float32), "b": 1}
    return obs, {"a": 0.5, "b": 0}, {"__all__": False}, {"a": False, "__all__": False}, {}


def test_check_step_accepts_a_well_formed_step():
    check_multi_agent_step(TwoAgents(), *_ok_step())
    env = TwoAgents()
    obs, infos = env.reset()
    check_multi_agent_reset(env, obs, infos)
    check_multi_agent_step(env, *env.step({"a": 0, "b": 1}))


def test_check_step_observation_outside_space_names_agent():
    obs, *rest = _ok_step()
    obs["a"] = np.array([0.0, 3.0], np.float32)
    with pytest.raises(EnvError, match=r"TwoAgents.step\(\): the observation of agent 'a'.*out"):
        check_multi_agent_step(TwoAgents(), obs, *rest)
    obs["a"], obs["b"] = np.zeros(2), 5
    with pytest.raises(EnvError, match=r"agent 'b' is outside its observation space Discrete"):
        check_multi_agent_step(TwoAgents(), obs, *rest)


def test_check_step_unknown_agent_id():
    obs, rew, term, trunc, infos = _ok_step()
    obs["bb"] = 0
    with pytest.raises(EnvError, match=r"observations for agent 'bb', which is not in possible"):
        check_multi_agent_step(TwoAgents(), obs, rew, term, trunc, infos)
    obs.pop("bb")
    with pytest.raises(EnvError, match=r"rewards for agent 'c', which is not in"):
        check_multi_agent_step(TwoAgents(), obs, {"c": 1.0}, term, trunc, infos)
    with pytest.raises(EnvError, match=r"terminateds for agent 'aa'.*Did you mean `a`"):
        check_multi_agent_step(TwoAgents(), obs, rew, {"aa": True, "__all__": False}, trunc, {})
    with pytest.raises(EnvError, match=r"infos for agent 'z'"):
        check_multi_agent_step(TwoAgents(), obs, rew, term, trunc, {"z": {}})
    check_multi_agent_step(TwoAgents(), obs, rew, term, trunc, {"__common__": {}, "a": {}})


def test_check_step_missing_all_key():
    obs, rew, term, trunc, infos = _ok_step()
    with pytest.raises(EnvError, match=r"terminateds without the '__all__' key"):
        check_multi_agent_step(TwoAgents(), obs, rew, {"a": False}, trunc, infos)
    # RLlib's envs may leave "__all__" out of `truncateds`: it counts as False.
    check_multi_agent_step(TwoAgents(), obs, rew, term, {"a": False}, infos)


def test_check_step_flags_rewards_and_stuck_episodes():
    obs, rew, term, trunc, infos = _ok_step()
    with pytest.raises(EnvError, match=r"terminateds\['a'\] must be a bool, got 1"):
        check_multi_agent_step(TwoAgents(), obs, rew, {"a": 1, "__all__": False}, trunc, infos)
    with pytest.raises(EnvError, match="reward of agent 'b' must be a finite real number"):
        check_multi_agent_step(TwoAgents(), obs, {"b": None}, term, trunc, infos)
    with pytest.raises(EnvError, match="reward of agent 'a'"):
        check_multi_agent_step(TwoAgents(), obs, {"a": float("nan")}, term, trunc, infos)
    check_multi_agent_step(TwoAgents(), obs, {"a": np.float32(1)}, term, trunc, infos)
    with pytest.raises(EnvError, match="no agent can act next"):
        check_multi_agent_step(TwoAgents(), {}, {}, term, trunc, infos)
    done = {"a": True, "b": True, "__all__": False}
    with pytest.raises(EnvError, match="no agent can act next"):
        check_multi_agent_step(TwoAgents(), obs, rew, done, trunc, infos)
    check_multi_agent_step(TwoAgents(), {}, {}, {"__all__": True}, trunc, infos)
    with pytest.raises(EnvError, match="must return a dict keyed by agent id for observations"):
        check_multi_agent_step(TwoAgents(), [1, 2], rew, term, trunc, infos)


def test_check_reset():
    env = TwoAgents()
    with pytest.raises(EnvError, match="reset\\(\\) returned no observation"):
        check_multi_agent_reset(env, {}, {})
    with pytest.raises(EnvError, match=r"reset\(\): the observation of agent 'a'.*shape"):
        check_multi_agent_reset(env, {"a": np.zeros(5)}, {})
    with pytest.raises(EnvError, match="infos for agent 'q'"):
        check_multi_agent_reset(env, {"b": 0}, {"q": {}})


def test_check_action_dict_names_missing_and_extra_agents():
    check_action_dict({"a": 0, "b": 1}, ["a", "b"])
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['b'\]$|no action.*\['b'\]"):
        check_action_dict({"a": 0}, ["a", "b"])
    with pytest.raises(EnvError, match=r"actions for agent\(s\) \['c'\] that were not asked"):
        check_action_dict({"a": 0, "b": 0, "c": 0}, ["a", "b"])
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['a'\] and actions for .*'c'"):
        check_action_dict({"b": 0, "c": 0}, ["a", "b"])
    with pytest.raises(EnvError, match=r"TwoAgents.step\(\): the action of agent 'b' is outside"):
        check_action_dict({"a": 1, "b": 2}, ["a", "b"], TwoAgents())
    with pytest.raises(EnvError, match="takes a dict of actions"):
        check_action_dict([0, 1], ["a", "b"])


def test_agents_to_act():
    obs = {"a": 0, "b": 0, "c": 0}
    assert agents_to_act(obs) == ["a", "b", "c"]
    assert agents_to_act(obs, {"a": True, "__all__": False}, {"c": True}) == ["b"]
    assert agents_to_act(obs, {"__all__": False}, {"__all__": True}) == []


def test_check_multi_agent_env_finds_an_agent_that_comes_back_after_done():
    class Zombie(TwoAgents):
        def step(self, action_dict):
            self.t += 1
            obs = {"a": np.zeros(2, np.float32), "b": 0}
            if self.t == 1:
                return obs, {}, {"a": False, "b": True, "__all__": False}, {"__all__": False}, {}
            obs = {"a": np.zeros(2, np.float32), "b": 0}  # 'b' is back
            return obs, {}, {"__all__": False}, {"__all__": False}, {}

    assert check_multi_agent_env(TwoAgents(), num_steps=10) == 3
    with pytest.raises(EnvError, match="agent 'b', which was already done"):
        check_multi_agent_env(Zombie(), num_steps=10)
