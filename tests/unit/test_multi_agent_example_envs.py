"""The multi-agent example envs: hand-checked episodes, spaces, episode ends, errors."""

import numpy as np
import pytest
from gymnasium import spaces

from scalerl.env.multi_agent_env import check_multi_agent_env, check_multi_agent_step
from scalerl.examples.envs import MixedAgentsEnv, MultiAgentArena, MultiAgentCartPole, TicTacToe
from scalerl.utils.errors import ConfigError, EnvError

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


@pytest.mark.parametrize(
    "make",
    [
        MultiAgentArena,
        lambda: MultiAgentArena({"width": 3, "height": 2, "timestep_limit": 7}),
        MultiAgentCartPole,
        lambda: MultiAgentCartPole({"num_agents": 3}),
        TicTacToe,
        MixedAgentsEnv,
        lambda: MixedAgentsEnv({"episode_len": 9, "scout_steps": 5, "latecomer_joins": 0}),
    ],
    ids=["arena", "arena-small", "cartpole", "cartpole-3", "tictactoe", "mixed", "mixed-cfg"],
)
def test_random_rollouts_pass_every_check(make):
    assert check_multi_agent_env(make(), num_steps=400, seed=1) >= 2


# --- MultiAgentArena ---------------------------------------------------------------------


def test_arena_spaces_and_start():
    env = MultiAgentArena()
    assert env.possible_agents == ["agent1", "agent2"] and env.timestep_limit == 50
    for agent in env.possible_agents:
        assert env.get_observation_space(agent) == spaces.MultiDiscrete([64, 64])
        assert env.get_action_space(agent) == spaces.Discrete(4)
    obs, infos = env.reset(seed=0)
    assert obs["agent1"].tolist() == [0, 63] and obs["agent2"].tolist() == [63, 0]
    assert set(infos) == {"agent1", "agent2"}


def test_arena_hand_checked_episode():
    """3 x 3 grid, fields row * 3 + col: agent1 starts on 0, agent2 on 8."""
    env = MultiAgentArena({"width": 3, "height": 3, "timestep_limit": 8})
    env.reset()
    # (agent1 action, agent2 action) -> (agent1 field, agent2 field, r1, r2)
    script = [
        ((UP, LEFT), (0, 7, -0.5, -0.1)),  # agent1 hits the wall; its start field is visited
        ((RIGHT, UP), (1, 4, 1.0, -0.1)),  # agent1 enters a new field
        ((DOWN, LEFT), (1, 3, -1.0, 1.0)),  # agent1 runs into agent2: stays, collision
        ((DOWN, UP), (4, 0, 1.0, -0.1)),  # agent2 may enter agent1's start field
        ((LEFT, DOWN), (3, 0, -1.0, 1.0)),  # agent2 runs into agent1: collision beats new field
        ((RIGHT, DOWN), (4, 3, -0.5, -0.1)),  # agent2 takes the field agent1 has just left
        ((LEFT, RIGHT), (4, 3, -1.0, 1.0)),  # both try to enter the other's field
        ((RIGHT, UP), (5, 0, 1.0, -0.1)),  # the last step: truncated
    ]
    for t, ((a1, a2), (f1, f2, r1, r2)) in enumerate(script, start=1):
        obs, rew, term, trunc, _ = env.step({"agent1": a1, "agent2": a2})
        assert obs["agent1"].tolist() == [f1, f2], t
        assert obs["agent2"].tolist() == [f2, f1], t
        assert rew == {"agent1": r1, "agent2": r2}, t
        assert term == {"agent1": False, "agent2": False, "__all__": False}
        last = t == 8
        assert trunc == {"agent1": last, "agent2": last, "__all__": last}, t
    assert env.agent1_visited_fields == {(0, 0), (0, 1), (1, 1), (1, 0), (1, 2)}


def test_arena_episode_is_truncated_at_the_limit():
    env = MultiAgentArena({"timestep_limit": 5})
    for _ in range(2):  # also after a reset
        env.reset()
        for t in range(1, 6):
            _, _, term, trunc, _ = env.step({"agent1": DOWN, "agent2": UP})
            assert trunc["__all__"] == (t == 5) and not term["__all__"]
    assert env.timesteps == 5


def test_arena_render_rgb():
    env = MultiAgentArena({"width": 5, "height": 3, "render_mode": "rgb_array"})
    env.reset()
    img = env.render()
    c = MultiAgentArena.CELL
    assert img.shape == (3 * c, 5 * c, 3) and img.dtype == np.uint8
    centre = c // 2
    assert img[centre, centre].tolist() == [0, 160, 40]  # agent1 at (0, 0)
    assert img[2 * c + centre, 4 * c + centre].tolist() == [200, 30, 30]  # agent2 at (2, 4)
    env.step({"agent1": RIGHT, "agent2": UP})
    img = env.render()
    assert img[centre, centre].tolist() == [200, 240, 200]  # visited
    assert img[centre, c + centre].tolist() == [0, 160, 40]
    assert MultiAgentArena().render() is None


def test_arena_errors():
    with pytest.raises(ConfigError, match="`timestep_limt`.*Did you mean `timestep_limit`"):
        MultiAgentArena({"timestep_limt": 10})
    with pytest.raises(EnvError, match="room for two agents"):
        MultiAgentArena({"width": 1, "height": 1})
    with pytest.raises(EnvError, match="render_mode"):
        MultiAgentArena({"render_mode": "human"})
    env = MultiAgentArena()
    env.reset()
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['agent2'\]"):
        env.step({"agent1": 0})
    with pytest.raises(EnvError, match="action of agent 'agent1' is outside"):
        env.step({"agent1": 4, "agent2": 0})


# --- MultiAgentCartPole ------------------------------------------------------------------


def _balance(obs):
    return int(obs[2] + obs[3] > 0)


def test_cartpole_agents_and_spaces():
    env = MultiAgentCartPole()
    assert env.possible_agents == [0, 1] and env.agents == [0, 1]
    assert MultiAgentCartPole({"num_agents": 4}).max_num_agents == 4
    assert env.get_observation_space(1).shape == (4,)
    obs, _ = env.reset(seed=0)
    assert sorted(obs) == [0, 1]


def test_cartpole_agent_that_falls_is_done_and_disappears():
    env = MultiAgentCartPole({"max_episode_steps": 60})
    obs, _ = env.reset(seed=0)
    fell_at = None
    for t in range(1, 61):
        actions = {a: 1 if a == 0 else _balance(o) for a, o in obs.items()}
        obs, rew, term, trunc, _ = env.step(actions)
        check_multi_agent_step(env, obs, rew, term, trunc, {})
        if fell_at is None and term.get(0):
            fell_at = t
            assert sorted(obs) == [0, 1] and term[1] is False and not term["__all__"]
            assert env.agents == [1]
            obs = {1: obs[1]}
        elif fell_at is not None:
            assert list(obs) == [1]  # agent 0 no longer appears
        if trunc["__all__"] or term["__all__"]:
            break
    assert fell_at is not None and fell_at < 20
    assert t == 60 and trunc == {1: True, "__all__": True}
    assert term == {1: False, "__all__": False}  # the last agent was truncated
    assert env.agents == []


def test_cartpole_idle_agent_does_not_advance_and_last_fall_terminates():
    env = MultiAgentCartPole()
    obs, _ = env.reset(seed=1)
    start1 = obs[1]
    steps = 0
    while True:
        obs, _, term, _, _ = env.step({0: 1})  # agent 1 waits
        steps += 1
        assert list(obs) == [0]
        if term[0]:
            break
    assert not term["__all__"] and env.agents == [1]
    with pytest.raises(EnvError, match="agent 0, which is done"):
        env.step({0: 1})
    obs, _, term, _, _ = env.step({1: 0})
    assert not np.array_equal(obs[1], start1)
    while not term["__all__"]:
        obs, _, term, trunc, _ = env.step({1: 0})
    assert term == {1: True, "__all__": True} and not trunc["__all__"]


# --- TicTacToe ---------------------------------------------------------------------------


def _play(env, moves):
    """Alternate `moves`; assert only the mover is asked to act; return the last step."""
    obs, _ = env.reset()
    for i, field in enumerate(moves):
        (player,) = obs
        assert player == ("player1" if i % 2 == 0 else "player2")
        out = env.step({player: field})
        obs = out[0]
    return out


def test_tictactoe_turns_masks_and_perspective():
    env = TicTacToe({"first_player": "player1"})
    obs, _ = env.reset()
    assert list(obs) == ["player1"]
    assert obs["player1"]["action_mask"].tolist() == [1.0] * 9
    assert obs["player1"]["observations"].tolist() == [0.0] * 9
    obs, rew, term, trunc, _ = env.step({"player1": 4})
    assert list(obs) == ["player2"] and rew == {"player1": 0.0}
    assert term == {"__all__": False} and trunc == {"__all__": False}
    view = obs["player2"]
    assert view["observations"][4] == -1.0 and view["action_mask"][4] == 0.0
    assert view["action_mask"].sum() == 8
    obs, rew, *_ = env.step({"player2": 0})
    assert list(obs) == ["player1"] and rew == {"player2": 0.0}
    assert obs["player1"]["observations"][[0, 4]].tolist() == [-1.0, 1.0]
    assert env.observation_spaces["player1"]["action_mask"] == spaces.Box(0, 1, (9,), np.float32)


@pytest.mark.parametrize(
    "moves, winner",
    [
        ([0, 3, 1, 4, 2], "player1"),  # top row
        ([0, 3, 1, 4, 8, 5], "player2"),  # middle row
        ([1, 0, 2, 4, 3, 8], "player2"),  # diagonal
        ([2, 0, 5, 1, 8], "player1"),  # right column
        ([0, 1, 4, 2, 8], "player1"),  # diagonal
        ([2, 0, 4, 1, 6], "player1"),  # anti-diagonal
    ],
)
def test_tictactoe_win(moves, winner):
    env = TicTacToe({"first_player": "player1"})
    obs, rew, term, trunc, infos = _play(env, moves)
    loser = "player2" if winner == "player1" else "player1"
    assert rew == {winner: 1.0, loser: -1.0}
    assert term == {"player1": True, "player2": True, "__all__": True}
    assert trunc == {"player1": False, "player2": False, "__all__": False}
    assert sorted(obs) == ["player1", "player2"]  # both get a final observation
    assert obs[winner]["observations"].sum() == -obs[loser]["observations"].sum()
    with pytest.raises(EnvError, match="after the game ended"):
        env.step({loser: 8})


def test_tictactoe_draw():
    # X O X / X O O / O X X: no line for anyone.
    out = _play(TicTacToe({"first_player": "player1"}), [0, 1, 2, 4, 3, 5, 7, 6, 8])
    obs, rew, term, *_ = out
    assert rew == {"player1": 0.0, "player2": 0.0} and term["__all__"]
    assert obs["player2"]["action_mask"].tolist() == [0.0] * 9


def test_tictactoe_draw_is_not_reached_early():
    env = TicTacToe({"first_player": "player1"})
    *_, term, _, _ = _play(env, [0, 1, 2, 4, 3, 5, 7, 6])
    assert not term["__all__"]


def test_tictactoe_illegal_move_ends_the_game_with_a_penalty():
    env = TicTacToe({"first_player": "player2"})
    obs, _ = env.reset()
    assert list(obs) == ["player2"]
    env.step({"player2": 4})
    obs, rew, term, _, infos = env.step({"player1": 4})  # occupied
    assert rew == {"player1": -1.0, "player2": 0.0}
    assert infos == {"player1": {"illegal_move": True}}
    assert term["__all__"] and sorted(obs) == ["player1", "player2"]


def test_tictactoe_wrong_player_or_action_raises():
    env = TicTacToe({"first_player": "player1"})
    env.reset()
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['player1'\] and actions for"):
        env.step({"player2": 0})
    with pytest.raises(EnvError, match="action of agent 'player1' is outside"):
        env.step({"player1": 9})
    with pytest.raises(EnvError, match="first_player"):
        TicTacToe({"first_player": "player3"})


def test_tictactoe_random_first_player_is_seeded():
    env = TicTacToe()
    firsts = [next(iter(env.reset(seed=s)[0])) for s in range(20)]
    assert set(firsts) == {"player1", "player2"}
    assert firsts == [next(iter(env.reset(seed=s)[0])) for s in range(20)]


def test_tictactoe_render_ansi():
    env = TicTacToe({"first_player": "player1", "render_mode": "ansi"})
    env.reset()
    env.step({"player1": 0})
    env.step({"player2": 4})
    assert env.render() == "X..\n.O.\n...\n"


# --- MixedAgentsEnv ----------------------------------------------------------------------


def test_mixed_spaces_differ_per_agent():
    env = MixedAgentsEnv()
    obs_kinds = {a: type(env.get_observation_space(a)) for a in env.possible_agents}
    act_kinds = {a: type(env.get_action_space(a)) for a in env.possible_agents}
    assert obs_kinds == {
        "walker": spaces.Box,
        "scout": spaces.Discrete,
        "latecomer": spaces.MultiDiscrete,
        "blinker": spaces.Dict,
    }
    assert act_kinds == {
        "walker": spaces.Discrete,
        "scout": spaces.Box,
        "latecomer": spaces.MultiDiscrete,
        "blinker": spaces.Discrete,
    }


def test_mixed_hand_checked_episode():
    env = MixedAgentsEnv()
    obs, _ = env.reset()
    assert list(obs) == ["walker", "scout", "blinker"] and env.agents == list(obs)
    assert obs["walker"].tolist() == [0.0, 0.0] and obs["scout"] == 0
    assert obs["blinker"]["parity"] == 0

    def act(obs, right=True):
        t = int(round(obs["walker"][0] * 6)) if "walker" in obs else None
        out = {}
        for a in obs:
            if a == "walker":
                out[a] = t % 3 if right else (t + 1) % 3
            elif a == "scout":
                out[a] = np.array([0.5, -0.25], np.float32)
            elif a == "latecomer":
                out[a] = np.array([t % 2, 2])
            else:
                out[a] = (t // 2) % 2
        return out

    # t after the step: (obs agents, reward agents, terminated agents, agents in episode)
    expected = {
        1: (
            ["walker", "scout"],
            ["walker", "scout", "blinker"],
            [],
            ["walker", "scout", "blinker"],
        ),
        2: (["walker", "scout", "blinker"], ["walker", "scout"], ["scout"], ["walker", "blinker"]),
        3: (["walker", "latecomer"], ["walker", "blinker"], [], ["walker", "blinker", "latecomer"]),
        4: (["walker", "latecomer", "blinker"], ["walker", "latecomer"], [], None),
        5: (["walker", "latecomer"], ["walker", "latecomer", "blinker"], [], None),
        6: (["walker", "blinker", "latecomer"], ["walker", "latecomer"], [], []),
    }
    for t in range(1, 7):
        actions = act(obs)
        obs, rew, term, trunc, infos = env.step(actions)
        check_multi_agent_step(env, obs, rew, term, trunc, infos)
        want_obs, want_rew, want_term, want_agents = expected[t]
        assert sorted(obs) == sorted(want_obs), t
        assert sorted(rew) == sorted(want_rew), t
        assert [a for a in term if a != "__all__" and term[a]] == want_term, t
        if want_agents is not None:
            assert sorted(env.agents) == sorted(want_agents), t
        assert all(r == (-0.75 if a == "scout" else 1.0) for a, r in rew.items()), (t, rew)
        assert trunc["__all__"] == (t == 6) and not term["__all__"]
        obs = {a: o for a, o in obs.items() if not term.get(a) and not trunc.get(a)}
    assert all(trunc[a] for a in ["walker", "blinker", "latecomer"])


def test_mixed_every_agent_in_the_episode_gets_a_final_observation():
    env = MixedAgentsEnv({"episode_len": 5})  # odd: the blinker would skip t == 5
    obs, _ = env.reset()
    for t in range(1, 6):
        obs, _, term, trunc, _ = env.step({a: env.get_action_space(a).sample() for a in obs})
        obs = {a: o for a, o in obs.items() if not term.get(a) and not trunc.get(a)}
        assert ("blinker" in obs) == (t % 2 == 0 and t < 5), t
    assert trunc == {"walker": True, "latecomer": True, "blinker": True, "__all__": True}


def test_mixed_wrong_rewards_for_wrong_actions_and_action_errors():
    env = MixedAgentsEnv()
    env.reset()
    _, rew, *_ = env.step({"walker": 2, "scout": np.zeros(2, np.float32), "blinker": 1})
    assert rew == {"walker": 0.0, "scout": 0.0, "blinker": 0.0}
    with pytest.raises(EnvError, match=r"actions for agent\(s\) \['blinker'\] that were not"):
        env.step({"walker": 0, "scout": np.zeros(2, np.float32), "blinker": 0})
    env.step({"walker": 0, "scout": np.zeros(2, np.float32)})  # scout done now
    with pytest.raises(EnvError, match=r"\['scout'\] that were not asked"):
        env.step({"walker": 0, "blinker": 0, "scout": np.zeros(2, np.float32)})
    env.step({"walker": 0, "blinker": 0})
    with pytest.raises(EnvError, match=r"no action for agent\(s\) \['latecomer'\]"):
        env.step({"walker": 0})
    with pytest.raises(ConfigError):
        MixedAgentsEnv({"episode_length": 3})
    with pytest.raises(EnvError, match="scout_steps"):
        MixedAgentsEnv({"scout_steps": 6})
