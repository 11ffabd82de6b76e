"""Per-agent recurrent state for the MultiAgentEnvRunner's stateful (LSTM/attention) modules.

Each agent keeps its own state, a_{t-1} and r_{t-1} from its first step in an episode
(the module's initial state, zeros) until its episode ends. A step feeds the states of
all agents that act and map to one module as one batch with a time axis of 1.

In the per-module [M, 1] column (see `multi_agent_env_runner`) a sequence starts at every
trajectory's first row and every `max_seq_len` rows after it, so no sequence crosses a
trajectory boundary; the columns added are those of the single-agent fragment of a
stateful module (`utils.sequences`, `env_runner._MemoryRecord`): `seq_index` / `state_in`
at each sequence start, `prev_actions` / `prev_rewards` per row, `trunc_state` (the
state after each cut trajectory's last step, for V(trunc_obs)) and `bootstrap_state`
(never read: every trajectory ends in a termination or a cut).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from scalerl.core.rl_module import Columns
from scalerl.env.env_runner import action_buffer
from scalerl.utils import nested
from scalerl.utils.sequences import one_step_inputs


class StepMemory(NamedTuple):
    """One agent's recurrent inputs and output of one step (rows, no batch axis)."""

    state_in: dict[str, np.ndarray]
    prev_action: Any
    prev_reward: float
    state_out: dict[str, np.ndarray]


class TrajectoryMemory:
    """The recurrent columns of one trajectory in a fragment (rows in step order)."""

    __slots__ = ("max_seq_len", "states", "prev_actions", "prev_rewards", "state_out")

    def __init__(self, max_seq_len: int) -> None:
        self.max_seq_len = max_seq_len
        self.states: list[dict[str, np.ndarray]] = []  # at rows 0, L, 2L, ...
        self.prev_actions: list = []
        self.prev_rewards: list[float] = []
        self.state_out: dict[str, np.ndarray] = {}  # after the last step

    def add(self, step: StepMemory) -> None:
        """Append the step that ended next in this trajectory."""
        if len(self.prev_rewards) % self.max_seq_len == 0:  # a copy: frees the step's batch
            self.states.append({k: v.copy() for k, v in step.state_in.items()})
        self.prev_actions.append(step.prev_action)
        self.prev_rewards.append(step.prev_reward)
        self.state_out = step.state_out


class _ModuleMemory:
    """What a stateful module's agents share: initial state, sequence length, action space."""

    def __init__(self, module: Any, action_space: gym.Space) -> None:
        self.initial = {k: v.numpy() for k, v in module.get_initial_state().items()}
        self.max_seq_len = int(module.model_config.get("max_seq_len", 20))
        self.zero_action = nested.map_structure(
            lambda a: np.zeros_like(a[0]), action_buffer(action_space, (1,))
        )
        self.numpy_fn = module.get_numpy_recurrent_fn()


class AgentMemory:
    """The recurrent state of every agent of a MultiAgentEnvRunner, keyed (env, agent id).

    Args:
        modules: {module id: RLModule}; only stateful ones are tracked.
        specs: {module id: RLModuleSpec} (for the action spaces).
    """

    def __init__(self, modules: Any, specs: dict[str, Any]) -> None:
        self.modules: dict[str, _ModuleMemory] = {}
        for mid, module in modules.items():
            self.add_module(mid, module, specs[mid].action_space)
        # (env, agent) -> [state, a_{t-1}, r_{t-1}] of the agent's next step
        self.agents: dict[tuple[int, Any], list] = {}

    def add_module(self, mid: str, module: Any, action_space: gym.Space) -> None:
        """Track module `mid` if it is stateful."""
        if module.is_stateful():
            self.modules[mid] = _ModuleMemory(module, action_space)

    def remove_module(self, mid: str) -> None:
        """Stop tracking module `mid` (its agents' episodes restart anyway)."""
        self.modules.pop(mid, None)

    def refresh(self, modules: Any) -> None:
        """New numpy step functions after a weight update."""
        for mid, memory in self.modules.items():
            memory.numpy_fn = modules[mid].get_numpy_recurrent_fn()

    def is_stateful(self, mid: str) -> bool:
        """Whether module `mid` is recurrent."""
        return mid in self.modules

    def new_trajectory(self, mid: str) -> TrajectoryMemory | None:
        """Empty recurrent columns for a trajectory of module `mid` (None if memoryless)."""
        memory = self.modules.get(mid)
        return None if memory is None else TrajectoryMemory(memory.max_seq_len)

    # -- episodes --------------------------------------------------------------------------
    def clear(self) -> None:
        """Every agent starts over (all episodes restart)."""
        self.agents.clear()

    def forget_env(self, i: int) -> None:
        """Env i starts a new episode: its agents start from the initial state."""
        for key in [k for k in self.agents if k[0] == i]:
            del self.agents[key]

    def forget(self, i: int, aid: Any) -> None:
        """Agent `aid` of env i is done: if it acts again, it starts from the initial state."""
        self.agents.pop((i, aid), None)

    def end_step(self, i: int, aid: Any, reward: float) -> None:
        """The agent's step ended with `reward`: its r_{t-1} for the next step."""
        entry = self.agents.get((i, aid))
        if entry is not None:
            entry[2] = reward

    # -- acting ----------------------------------------------------------------------------
    def inputs(self, mid: str, members: list[tuple[int, Any]]) -> tuple[dict, Any, np.ndarray]:
        """(state [B, ...], a_{t-1} [B, ...], r_{t-1} [B]) of the agents `members` (env,
        agent id) of module `mid`; an agent's first step gets the initial state and zeros."""
        memory = self.modules[mid]
        rows = [self.agents.get(key) for key in members]
        state = {
            k: np.stack([v if row is None else row[0][k] for row in rows])
            for k, v in memory.initial.items()
        }
        prev_actions = nested.stack([memory.zero_action if row is None else row[1] for row in rows])
        prev_rewards = np.array([0.0 if row is None else row[2] for row in rows], np.float32)
        return state, prev_actions, prev_rewards

    def forward(
        self, mid: str, module: Any, obs: Any, inputs: tuple, explore: bool
    ) -> tuple[Any, np.ndarray | None, dict[str, np.ndarray]]:
        """One step of module `mid` for a batch of agents: (actions or None when they are
        to be sampled from the distribution inputs, distribution inputs, state out)."""
        state, prev_actions, prev_rewards = inputs
        numpy_fn = self.modules[mid].numpy_fn
        if explore and numpy_fn is not None:
            dist_inputs, state_out = numpy_fn(obs, state, prev_actions, prev_rewards)
            return None, dist_inputs.astype(np.float32, copy=False), state_out
        with torch.inference_mode():
            batch = nested.map_structure(
                torch.from_numpy, one_step_inputs(obs, state, prev_actions, prev_rewards)
            )
            out = module.forward_exploration(batch) if explore else module.forward_inference(batch)
            dist_inputs, actions = out.get(Columns.ACTION_DIST_INPUTS), out.get(Columns.ACTIONS)
            if dist_inputs is not None:
                dist_inputs = dist_inputs[:, 0]
            if actions is not None:
                actions = nested.map_structure(lambda a: a[:, 0].numpy(), actions)
            elif not explore:
                dist = module.get_inference_action_dist_cls()(dist_inputs)
                actions = dist.deterministic_sample().numpy()
            state_out = {k: v.numpy() for k, v in out[Columns.STATE_OUT].items()}
        return actions, None if dist_inputs is None else dist_inputs.numpy(), state_out

    def advance(
        self, members: list[tuple[int, Any]], inputs: tuple, action_rows: list, state_out: dict
    ) -> list[StepMemory]:
        """After a step: each agent's state out and action become its next inputs.
        Returns each agent's StepMemory (what its trajectory records)."""
        state, prev_actions, prev_rewards = inputs
        steps = []
        for j, (key, action) in enumerate(zip(members, action_rows)):
            out = {k: v[j] for k, v in state_out.items()}
            steps.append(
                StepMemory(
                    {k: v[j] for k, v in state.items()},
                    nested.index(prev_actions, j),
                    float(prev_rewards[j]),
                    out,
                )
            )
            self.agents[key] = [out, action, 0.0]
        return steps

    # -- fragments -------------------------------------------------------------------------
    def columns(self, mid: str, trajs: list) -> dict[str, Any]:
        """The recurrent columns of module `mid`'s [M, 1] fragment, for its trajectories
        `trajs` (each with `.memory`, `.rewards` and `.terminated`) laid end to end."""
        memory = self.modules[mid]
        seq_index, states, trunc_states, prev_actions, prev_rewards = [], [], [], [], []
        row = 0
        for traj in trajs:
            m = traj.memory
            seq_index += [(row + k * m.max_seq_len, 0) for k in range(len(m.states))]
            states += m.states
            prev_actions += m.prev_actions
            prev_rewards += m.prev_rewards
            if not traj.terminated:  # in the order of `trunc_index`
                trunc_states.append(m.state_out)
            row += len(traj.rewards)

        def stacked(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
            return {
                k: np.stack([r[k] for r in rows]) if rows else np.empty((0, *v.shape), v.dtype)
                for k, v in memory.initial.items()
            }

        return {
            Columns.SEQ_INDEX: np.array(seq_index, dtype=np.int64).reshape(-1, 2),
            Columns.STATE_IN: stacked(states),
            Columns.PREV_ACTIONS: nested.map_structure(
                lambda x: x[:, None], nested.stack(prev_actions)
            ),
            Columns.PREV_REWARDS: np.asarray(prev_rewards, dtype=np.float32)[:, None],
            Columns.TRUNC_STATE: stacked(trunc_states),
            Columns.BOOTSTRAP_STATE: {k: v[None].copy() for k, v in memory.initial.items()},
        }
