"""Acting from an algorithm's module: observation batches to tensors, and the one-step
inputs of a stateful module (state, previous action and reward) as EnvRunners feed them."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from scalerl.core.rl_module import Columns, RLModule
from scalerl.env.checks import describe
from scalerl.env.env_runner import action_buffer, to_env_actions
from scalerl.utils import nested


def observation_error(what: str, space: gym.Space, why: str) -> ValueError:
    """The ValueError for an observation that does not fit `space`, saying what to pass instead.

    Args:
        what: What was passed, e.g. "The observation" or "The observations".
        space: The module's observation space.
        why: Why it does not fit.
    """
    return ValueError(
        f"{what} does not fit the module's observation space {space}: {why}. Pass "
        + (
            "one observation (lists and Python numbers are converted to the space's dtype)."
            if what.startswith("The observation")
            else "a batch (first axis = batch) of observations, or a dict {key: observation}."
        )
    )


def check_observation(obs: Any, space: gym.Space, path: str = "") -> Any:
    """One observation as arrays of the space's dtypes (nested like the space); a
    ValueError naming the expected shape and what was given (no broadcasting, no
    flattening, no NaN/inf, Discrete values in range)."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, dict) or set(obs) != set(space.spaces):
            got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
            raise observation_error(
                f"The observation{path}",
                space,
                f"expected a dict with keys {sorted(space.spaces)}, got {got}",
            )
        return {k: check_observation(obs[k], s, f"{path}[{k!r}]") for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(obs, tuple | list) or len(obs) != len(space.spaces):
            raise observation_error(
                f"The observation{path}",
                space,
                f"expected a tuple of {len(space.spaces)}, got {describe(obs)}",
            )
        return tuple(
            check_observation(o, s, f"{path}[{i}]")
            for i, (o, s) in enumerate(zip(obs, space.spaces))
        )
    return _leaf(obs, space, f"The observation{path}", ())


def check_observation_batch(obs: Any, space: gym.Space) -> Any:
    """A batch of observations [B, ...] (nested like the space), checked as
    `check_observation` checks one; every leaf must have the same batch size B."""
    sizes: set[int] = set()

    def visit(x: Any, s: gym.Space, path: str) -> Any:
        if isinstance(s, gym.spaces.Dict):
            if not isinstance(x, dict) or set(x) != set(s.spaces):
                got = sorted(x) if isinstance(x, dict) else type(x).__name__
                raise observation_error(
                    f"The batch{path}",
                    s,
                    f"expected a dict with keys {sorted(s.spaces)}, got {got}",
                )
            return {k: visit(x[k], sub, f"{path}[{k!r}]") for k, sub in s.spaces.items()}
        if isinstance(s, gym.spaces.Tuple):
            if not isinstance(x, tuple | list) or len(x) != len(s.spaces):
                raise observation_error(
                    f"The batch{path}", s, f"expected a tuple of {len(s.spaces)} batched parts"
                )
            return tuple(
                visit(p, sub, f"{path}[{i}]") for i, (p, sub) in enumerate(zip(x, s.spaces))
            )
        arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
        if arr.ndim == 0:
            raise observation_error(
                f"The batch{path}", s, f"got a scalar {describe(x)} with no batch axis"
            )
        sizes.add(len(arr))
        return _leaf(arr, s, f"The batch{path}", (len(arr),))

    out = visit(obs, space, "")
    if len(sizes) > 1:
        raise observation_error(
            "The batch", space, f"its parts have different batch sizes {sorted(sizes)}"
        )
    return out


def _leaf(value: Any, space: gym.Space, what: str, batch: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise observation_error(what, space, f"got {describe(value)}") from None
    shape = batch + (() if isinstance(space, gym.spaces.Discrete) else tuple(space.shape))
    if arr.dtype.kind not in "biuf":
        raise observation_error(
            what, space, f"got non-numeric values ({arr.dtype}) {describe(value)}"
        )
    if arr.shape != shape:
        raise observation_error(what, space, f"got shape {arr.shape}, expected {shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise observation_error(what, space, f"got non-finite values {describe(value)}")
    if np.issubdtype(space.dtype, np.integer) and arr.dtype.kind == "f":
        if not np.array_equal(arr, np.round(arr)):
            raise observation_error(what, space, f"got non-integer values {describe(value)}")
    if isinstance(space, gym.spaces.Discrete):
        if arr.size and not ((arr >= space.start) & (arr < space.start + space.n)).all():
            raise observation_error(what, space, f"got {describe(value)}, outside its range")
    return arr.astype(space.dtype, copy=False)


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


def module_actions(
    module: RLModule,
    observations: Any,
    state: dict[str, Any] | None,
    prev_action: Any,
    prev_reward: Any,
    *,
    explore: bool,
    normalize_actions: bool,
    clip_actions: bool,
) -> Any:
    """`module`'s env actions for a checked (and filtered) batch of observations: sampled
    with `explore`, else deterministic; a stateful module takes one step from `state`
    (None: its initial state) and returns `(actions, state_out, {})` when `state` is
    given (`Algorithm.compute_actions`)."""
    space = module.observation_space
    device = next(module.parameters()).device
    batch = {Columns.OBS: obs_to_tensors(observations, space, device)}
    stateful = module.is_stateful()
    if stateful:
        batch = recurrent_batch(module, batch, state, prev_action, prev_reward)
    with torch.no_grad():
        if explore:
            out = module.forward_exploration(batch)
            dist_cls = module.get_exploration_action_dist_cls()
        else:
            out = module.forward_inference(batch)
            dist_cls = module.get_inference_action_dist_cls()
        actions = out.get(Columns.ACTIONS)
        if actions is None:
            inputs = out[Columns.ACTION_DIST_INPUTS]
            dist = dist_cls(inputs[:, 0] if stateful else inputs)
            actions = dist.sample() if explore else dist.deterministic_sample()
        elif stateful:
            actions = nested.map_structure(lambda a: a[:, 0], actions)
    actions = nested.map_structure(lambda a: a.cpu().numpy(), actions)
    actions = to_env_actions(actions, module.action_space, normalize_actions, clip_actions)
    if state is None:
        return actions
    return actions, {k: v.cpu().numpy() for k, v in out[Columns.STATE_OUT].items()}, {}
