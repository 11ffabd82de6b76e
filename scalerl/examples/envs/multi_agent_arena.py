"""MultiAgentArena: the two-agent grid game of RLlib's "RLlib in 60 minutes" tutorials."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from scalerl.env.multi_agent_env import MultiAgentEnv, check_action_dict
from scalerl.examples.envs._config import check_config
from scalerl.utils.errors import EnvError

# 0 up, 1 right, 2 down, 3 left, as (row, column) moves.
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


class MultiAgentArena(MultiAgentEnv):
    """Agent1 explores a grid while agent2 tries to bump into it.

    A `height` x `width` grid (default 8 x 8). Agent "agent1" starts in the upper left
    corner (row 0, column 0), "agent2" in the lower right one (row `height - 1`, column
    `width - 1`). Both act every step with `Discrete(4)`: 0 up, 1 right, 2 down, 3 left.

    Moves are applied agent1 first, then agent2 (from the position agent1 has just
    reached). A move that would leave the grid keeps the agent in place. A move onto the
    other agent's field keeps the mover in place and is a *collision* (whichever agent
    moved). So agent2 may step onto the field agent1 has just left, and the agents never
    swap or share a field.

    Rewards per step: agent1 gets -1.0 if there was a collision, else +1.0 if it entered a
    field it had not visited in this episode (its start field counts as visited), else
    -0.5; agent2 gets +1.0 if there was a collision, else -0.1.

    Observation of each agent: `MultiDiscrete([width * height, width * height])`, (own
    position, other agent's position), a position being `row * width + column`.
    The episode is truncated (`truncateds["__all__"]`, never terminated) after
    `timestep_limit` steps (default 50).

    Config keys: "width" (8), "height" (8), "timestep_limit" (50), "render_mode" (None or
    "rgb_array": `render()` returns a uint8 `(height * 16, width * 16, 3)` image: visited
    fields light green, agent1 green, agent2 red).

    Differences from the tutorial code: the tutorials' variants move a random agent first
    or agent2 first (where one variant drops agent2's collision event); this env fixes the
    order (agent1 first) so episodes are deterministic and every collision counts.
    """

    metadata = {"render_modes": ["rgb_array"]}
    CELL = 16  # pixels per field in `render()`

    def __init__(self, config: dict | None = None):
        super().__init__()
        config = check_config(
            "MultiAgentArena",
            config,
            {"width": 8, "height": 8, "timestep_limit": 50, "render_mode": None},
        )
        self.width, self.height = int(config["width"]), int(config["height"])
        self.timestep_limit = int(config["timestep_limit"])
        if self.width < 1 or self.height < 1 or self.width * self.height < 2:
            raise EnvError(
                f"MultiAgentArena needs room for two agents; got width={self.width}, "
                f"height={self.height}."
            )
        if self.timestep_limit < 1:
            raise EnvError(
                f"MultiAgentArena: timestep_limit must be >= 1, got {self.timestep_limit}"
            )
        self.render_mode = config["render_mode"]
        if self.render_mode not in (None, "rgb_array"):
            raise EnvError(
                f"MultiAgentArena: render_mode must be None or 'rgb_array', got "
                f"{self.render_mode!r}."
            )
        self.possible_agents = ["agent1", "agent2"]
        self.agents = list(self.possible_agents)
        n = self.width * self.height
        self.observation_spaces = {a: gym.spaces.MultiDiscrete([n, n]) for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(4) for a in self.agents}
        self._reset_state()

    def _reset_state(self) -> None:
        self.agent1_pos = (0, 0)
        self.agent2_pos = (self.height - 1, self.width - 1)
        self.agent1_visited_fields = {self.agent1_pos}
        self.timesteps = 0
        self.collision = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_state()
        return self._get_obs(), {"agent1": {}, "agent2": {}}

    def step(self, action_dict: dict):
        check_action_dict(action_dict, self.agents, self)
        self.timesteps += 1
        self.agent1_pos, bumped1 = self._move(
            self.agent1_pos, int(action_dict["agent1"]), self.agent2_pos
        )
        self.agent2_pos, bumped2 = self._move(
            self.agent2_pos, int(action_dict["agent2"]), self.agent1_pos
        )
        self.collision = bumped1 or bumped2
        new_field = self.agent1_pos not in self.agent1_visited_fields
        self.agent1_visited_fields.add(self.agent1_pos)
        rewards = {
            "agent1": -1.0 if self.collision else 1.0 if new_field else -0.5,
            "agent2": 1.0 if self.collision else -0.1,
        }
        over = self.timesteps >= self.timestep_limit
        terminateds = {"agent1": False, "agent2": False, "__all__": False}
        truncateds = {"agent1": over, "agent2": over, "__all__": over}
        return self._get_obs(), rewards, terminateds, truncateds, {"agent1": {}, "agent2": {}}

    def _move(self, pos: tuple, action: int, other: tuple) -> tuple[tuple, bool]:
        """The new position and whether the move bumped into `other`."""
        dr, dc = _MOVES[action]
        row, col = pos[0] + dr, pos[1] + dc
        if not (0 <= row < self.height and 0 <= col < self.width):
            return pos, False
        if (row, col) == other:
            return pos, True
        return (row, col), False

    def _index(self, pos: tuple) -> int:
        return pos[0] * self.width + pos[1]

    def _get_obs(self) -> dict:
        p1, p2 = self._index(self.agent1_pos), self._index(self.agent2_pos)
        return {"agent1": np.array([p1, p2], np.int64), "agent2": np.array([p2, p1], np.int64)}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        c = self.CELL
        img = np.full((self.height * c, self.width * c, 3), 255, np.uint8)
        for r, col in self.agent1_visited_fields:
            img[r * c : (r + 1) * c, col * c : (col + 1) * c] = (200, 240, 200)
        for (r, col), color in ((self.agent1_pos, (0, 160, 40)), (self.agent2_pos, (200, 30, 30))):
            img[r * c + 2 : (r + 1) * c - 2, col * c + 2 : (col + 1) * c - 2] = color
        img[::c, :] = img[:, ::c] = (128, 128, 128)  # grid lines
        return img
