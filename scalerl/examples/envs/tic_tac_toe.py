"""Tic-tac-toe for two players taking turns, with an action mask."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from scalerl.env.multi_agent_env import MultiAgentEnv, check_action_dict
from scalerl.examples.envs._config import check_config
from scalerl.utils.errors import EnvError

_LINES = np.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]]
)


class TicTacToe(MultiAgentEnv):
    """Two players, "player1" and "player2", take turns placing pieces on a 3x3 board.

    Fields are numbered `row * 3 + column` (0 upper left, 8 lower right); the action
    (`Discrete(9)`) is the field to place a piece on. Only the player to move appears in
    the observation dict, which holds `{"action_mask": float32 (9,) 1 for empty fields,
    "observations": float32 (9,)}`, the board seen by that player: +1 own piece, -1 the
    opponent's, 0 empty (so one policy can play both sides).

    Rewards: after a move that does not end the game, the mover gets 0.0. A player who
    completes a row, column or diagonal wins: +1.0 for the winner, -1.0 for the loser; a
    full board without a winner is a draw, 0.0 for both. A move onto an occupied field
    (masked out) ends the game too: -1.0 for the mover, 0.0 for the opponent, and
    `infos[mover]["illegal_move"]` is True (as PettingZoo's illegal-move wrapper does). An
    action outside `Discrete(9)` or for the wrong player raises an `EnvError`.

    At the end of a game both players appear in the observation dict with their final
    observation (whose mask may be all zeros) and `terminateds[player]` True, and
    `terminateds["__all__"]` is True; games are never truncated.

    Config keys: "first_player": "random" (default; drawn from the env's seeded RNG),
    "player1" or "player2"; "render_mode": None or "ansi" (`render()` returns the board as
    text, X for player1, O for player2).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: dict | None = None):
        super().__init__()
        config = check_config("TicTacToe", config, {"first_player": "random", "render_mode": None})
        self.possible_agents = ["player1", "player2"]
        self.agents = list(self.possible_agents)
        if config["first_player"] not in ("random", *self.possible_agents):
            raise EnvError(
                f"TicTacToe: first_player must be 'random', 'player1' or 'player2', got "
                f"{config['first_player']!r}."
            )
        self.first_player = config["first_player"]
        self.render_mode = config["render_mode"]
        if self.render_mode not in (None, "ansi"):
            raise EnvError(
                f"TicTacToe: render_mode must be None or 'ansi', got {self.render_mode!r}"
            )
        box = gym.spaces.Box(0.0, 1.0, (9,), np.float32)
        board = gym.spaces.Box(-1.0, 1.0, (9,), np.float32)
        space = gym.spaces.Dict({"action_mask": box, "observations": board})
        self.observation_spaces = {a: space for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(9) for a in self.agents}
        self.board = np.zeros(9, np.int8)  # +1 player1, -1 player2, 0 empty
        self.current_player = "player1"
        self.game_over = False

    def _sign(self, player: str) -> int:
        return 1 if player == "player1" else -1

    def _other(self, player: str) -> str:
        return "player2" if player == "player1" else "player1"

    def _obs(self, player: str) -> dict:
        return {
            "action_mask": (self.board == 0).astype(np.float32),
            "observations": (self.board * self._sign(player)).astype(np.float32),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.board[:] = 0
        self.game_over = False
        if self.first_player == "random":
            self.current_player = self.possible_agents[int(self.np_random.integers(2))]
        else:
            self.current_player = self.first_player
        return {self.current_player: self._obs(self.current_player)}, {}

    def step(self, action_dict: dict):
        if self.game_over:
            raise EnvError("TicTacToe.step() called after the game ended; call reset() first.")
        check_action_dict(action_dict, [self.current_player], self)
        mover, opponent = self.current_player, self._other(self.current_player)
        field = int(action_dict[mover])
        if self.board[field] != 0:
            return self._end({mover: -1.0, opponent: 0.0}, {mover: {"illegal_move": True}})
        self.board[field] = self._sign(mover)
        if np.any(np.all(self.board[_LINES] == self._sign(mover), axis=1)):
            return self._end({mover: 1.0, opponent: -1.0}, {})
        if not np.any(self.board == 0):
            return self._end({mover: 0.0, opponent: 0.0}, {})
        self.current_player = opponent
        flags = {"__all__": False}
        return {opponent: self._obs(opponent)}, {mover: 0.0}, flags, dict(flags), {}

    def _end(self, rewards: dict, infos: dict):
        self.game_over = True
        obs = {p: self._obs(p) for p in self.possible_agents}
        terminateds = {p: True for p in self.possible_agents} | {"__all__": True}
        truncateds = {p: False for p in self.possible_agents} | {"__all__": False}
        return obs, rewards, terminateds, truncateds, infos

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        chars = {1: "X", -1: "O", 0: "."}
        rows = ["".join(chars[int(v)] for v in self.board[r * 3 : r * 3 + 3]) for r in range(3)]
        return "\n".join(rows) + "\n"
