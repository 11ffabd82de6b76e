"""Acting from an algorithm's module: observation batches to tensors, and the one-step
inputs of a stateful module (state, previous action and reward) as EnvRunners feed them."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalerl.core.rl_module import Columns, RLModule
from scalerl.env.env_runner import action_buffer
from scalerl.utils import nested


def obs_to_tensors(obs: Any, space: gym.Space, device: torch.device) -> Any:
    """A batch of observations (nested like `space`) as tensors of the space's dtypes."""
    if isinstance(space, gym.spaces.Dict):
        return {k: obs_to_tensors(obs[k], s, device) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(obs_to_tensors(o, s, device) for o, s in zip(obs, space.spaces))
    return torch.as_tensor(np.asarray(obs, dtype=space.dtype), device=device)


def recurrent_batch(
    module: RLModule, batch: dict[str, Any], state: Any, prev_action: Any, prev_reward: Any
) -> dict[str, Any]:
    """One step (T = 1) of a batch for a stateful module: state, a_{t-1} and r_{t-1} (zeros
    where not given), as the EnvRunner feeds them."""
    obs = batch[Columns.OBS]
    B = len(nested.first_leaf(obs))
    device = nested.first_leaf(obs).device
    if state is None:
        state = {k: v.expand(B, *v.shape) for k, v in module.get_initial_state().items()}
    if prev_action is None:
        prev_action = nested.map_structure(
            lambda a: np.zeros_like(a), action_buffer(module.action_space, (B,))
        )
    if prev_reward is None:
        prev_reward = np.zeros(B, dtype=np.float32)
    return {
        Columns.OBS: nested.map_structure(lambda x: x[:, None], obs),
        Columns.STATE_IN: {
            k: torch.as_tensor(np.asarray(v), device=device) for k, v in state.items()
        },
        Columns.PREV_ACTIONS: nested.map_structure(
            lambda a: torch.as_tensor(np.asarray(a), device=device)[:, None], prev_action
        ),
        Columns.PREV_REWARDS: torch.as_tensor(
            np.asarray(prev_reward, dtype=np.float32), device=device
        )[:, None],
    }
