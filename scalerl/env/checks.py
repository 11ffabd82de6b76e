"""Checks of what envs return, on every step: the Gymnasium API, observation shape and
dtype kind, and non-finite observations and rewards.

The EnvRunners run the cheap part inline on every step (the API, the flags, identity and
shape comparisons per env, or per module on the stacked batch for multi-agent) and the
NaN/inf test batched: once per fragment on the recorded arrays (`first_nonfinite`), or,
when dropping or evaluating, once per step on the stacked `[N, ...]` observations
(`EnvChecks.batch_finite`). Everything else here runs only when a check fails, to say
what is wrong. `config.environment(check_env_steps=False)` turns the per-step checks off;
`on_nonfinite="drop"` counts and drops non-finite steps instead of raising (see
`docs/design.md`, "Data checks").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.utils import nested
from scalerl.utils.errors import EnvError

ON_NONFINITE = ("raise", "drop")
# A reset that keeps returning non-finite observations in "drop" mode is an env bug.
MAX_RESETS = 10

GYMNASIUM_API = (
    "the Gymnasium API is `reset(*, seed=None, options=None) -> (obs, info)` and "
    "`step(action) -> (obs, reward, terminated, truncated, info)`"
)
OLD_GYM_HINT = (
    "An env written for the old Gym API (`step` returning `(obs, reward, done, info)`, "
    "`reset` returning only `obs`) can be wrapped with shimmy's compatibility wrapper "
    "(`shimmy.GymV21CompatibilityV0(env=old_env)`, `pip install shimmy`), or have its "
    "`reset` and `step` updated."
)
NONFINITE_HINT = (
    "Fix the env (or clip/replace the values in a wrapper), or set "
    "`config.environment(on_nonfinite='drop')` to drop such steps and count them in "
    "`env_runners/num_nonfinite_dropped`."
)


def describe(value: Any) -> str:
    """`repr(value)`, cut to 120 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def flat_leaf(space: gym.Space) -> bool:
    """Whether `space` is a single space, not a Dict or Tuple of sub-spaces."""
    return not isinstance(space, gym.spaces.Dict | gym.spaces.Tuple)


def allowed_kinds(space: gym.Space) -> str:
    """numpy dtype kinds an observation of `space` may have (cast to the space's dtype):
    any number for a float space; bool or integers for an integer space."""
    return "biuf" if np.issubdtype(space.dtype, np.floating) else "biu"


def leaf_problem(value: Any, space: gym.Space) -> tuple[np.ndarray | None, str | None]:
    """(the value as an array, None) when it fits the leaf space's shape and dtype kind,
    else (None, why)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return None, f"got {type(value).__name__} {describe(value)}"
    shape = () if isinstance(space, gym.spaces.Discrete) else tuple(space.shape)
    if arr.dtype.kind not in allowed_kinds(space):
        return None, (
            f"got dtype {arr.dtype} ({type(value).__name__}), which does not fit the space's "
            f"dtype {space.dtype}"
        )
    if arr.shape != shape:
        return None, f"got shape {arr.shape}, expected {shape}"
    if isinstance(space, gym.spaces.Discrete) and not (
        space.start <= int(arr) < space.start + space.n
    ):
        return None, f"got {int(arr)}, outside Discrete({space.n}, start={space.start})"
    return arr, None


def obs_problem(obs: Any, space: gym.Space, path: str = "") -> tuple[Any, str | None]:
    """(the observation with arrays as leaves, None), or (None, why) naming the leaf."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, Mapping) or set(obs) != set(space.spaces):
            got = sorted(obs) if isinstance(obs, Mapping) else type(obs).__name__
            return None, f"{path or 'observation'}: expected a dict with keys " + (
                f"{sorted(space.spaces)}, got {got}"
            )
        out = {}
        for k, s in space.spaces.items():
            out[k], why = obs_problem(obs[k], s, f"{path}[{k!r}]")
            if why:
                return None, why
        return out, None
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(obs, tuple | list) or len(obs) != len(space.spaces):
            return None, (
                f"{path or 'observation'}: expected a tuple of {len(space.spaces)}, "
                f"got {describe(obs)}"
            )
        parts = []
        for i, s in enumerate(space.spaces):
            part, why = obs_problem(obs[i], s, f"{path}[{i}]")
            if why:
                return None, why
            parts.append(part)
        return tuple(parts), None
    arr, why = leaf_problem(obs, space)
    return arr, (f"{path}: {why}" if path else why) if why else None


def finite(obs: Any) -> bool:
    """Whether every float leaf of one observation (or a batch) is finite."""
    for leaf in nested.leaves(obs):
        arr = np.asarray(leaf)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return False
    return True


def nonfinite_rows(batch: Any) -> np.ndarray:
    """Indices of the rows of a batch `[N, ...]` with a non-finite float value."""
    bad = None
    for leaf in nested.leaves(batch):
        if leaf.dtype.kind in "fc":
            rows = ~np.isfinite(leaf.reshape(len(leaf), -1)).all(axis=1)
            bad = rows if bad is None else bad | rows
    return np.zeros(0, dtype=np.int64) if bad is None else np.flatnonzero(bad)


def episode_step(dones: np.ndarray, t: int, steps_before: int) -> int:
    """The episode step (from 1) of fragment step t of one env: `dones` [T] are its episode
    ends in the fragment, `steps_before` the episode's steps before the fragment."""
    ends = np.flatnonzero(dones[:t])
    return t - int(ends[-1]) if len(ends) else steps_before + t + 1


def _first_bad_cell(leaf: np.ndarray) -> tuple[int, int] | None:
    """(t, i) of the first non-finite cell of a [T, N, ...] float array, in step order."""
    if leaf.dtype.kind != "f":
        return None
    ok = np.isfinite(leaf)
    if ok.all():
        return None
    bad = ~ok.reshape(*leaf.shape[:2], -1).all(axis=2)
    t, i = np.argwhere(bad)[0]
    return int(t), int(i)


def first_nonfinite(
    rewards: np.ndarray,
    obs: Any,
    next_obs: Any,
    trunc_index: list[tuple[int, int]],
    trunc_obs: list[Any],
) -> tuple[str, int, int, Any] | None:
    """The first NaN/inf of a [T, N] fragment by env step: (what, t, i, value), where step
    (t, i) returned it, or None. `obs` [T, N, ...] (obs[t] was returned by step t - 1),
    `next_obs` [N, ...] (by step T - 1), and the final observations of truncated episodes.
    """
    T, N = rewards.shape
    found: list[tuple[int, str, int, int, Any]] = []
    cell = _first_bad_cell(rewards[..., None])
    if cell:
        found.append((cell[0] * N + cell[1], "reward", *cell, rewards[cell]))
    after = nested.map_structure(lambda o, b: np.concatenate([o[1:], b[None]]), obs, next_obs)
    for leaf in nested.leaves(after):
        cell = _first_bad_cell(leaf)
        if cell:
            found.append((cell[0] * N + cell[1], "observation", *cell, nested.index(after, cell)))
    for (t, i), o in zip(trunc_index, trunc_obs):
        if not finite(o):
            found.append((t * N + i, "final observation", t, i, o))
            break
    if not found:
        return None
    _, what, t, i, value = min(found, key=lambda f: f[0])
    return what, t, i, value


class EnvChecks:
    """The per-step checks of one runner's observation space (single-agent: its only
    space; multi-agent: one per module) and the messages when they fail.

    Fast path: `shape` and `obs_dtype` (inline in the single-agent runner), `stack` (per
    module in the multi-agent runner), `batch_finite`. Only flat spaces have a fast path;
    Dict/Tuple observations go through `check_obs` every step.
    """

    def __init__(self, space: gym.Space, env_id: str, on_nonfinite: str = "raise"):
        self.space = space
        self.env_id = env_id
        self.drop = on_nonfinite == "drop"
        self.flat = flat_leaf(space)
        self.shape = (
            ()
            if isinstance(space, gym.spaces.Discrete)
            else tuple(space.shape)
            if self.flat
            else None
        )
        self.dtype = np.dtype(space.dtype) if self.flat else None
        # The dtype the single-agent runner last accepted by its slow path (an env that
        # returns float64 for a float32 Box then passes by identity from its second step).
        self.obs_dtype = self.dtype
        # An integer flat space (Discrete, MultiDiscrete, MultiBinary, an integer Box).
        self.integer = self.flat and not np.issubdtype(space.dtype, np.floating)
        self.discrete = _DiscreteRange(space) if isinstance(space, gym.spaces.Discrete) else None
        self.has_floats = any(
            np.issubdtype(s.dtype, np.floating) for s in _leaf_spaces(space) if s.dtype
        )
        self._zeros: dict[tuple, np.ndarray] = {}

    # -- fast checks ----------------------------------------------------------------------
    def batch_finite(self, batch: Any) -> bool:
        """Whether a stacked batch is all finite: one dot product with zeros per float leaf
        (NaN or inf times 0 is NaN; any finite value times 0 is 0, so it cannot overflow),
        cheaper than `np.isfinite(x).all()` on the small arrays of a vector step."""
        if not self.has_floats:
            return True
        if self.flat:  # the hot path
            zeros = self._zeros.get(batch.size)
            if zeros is None:
                zeros = self._zeros[batch.size] = np.zeros(batch.size, dtype=batch.dtype)
            return math.isfinite(batch.reshape(-1).dot(zeros))
        for leaf in nested.leaves(batch):
            if leaf.dtype.kind != "f":
                continue
            key = (leaf.size, leaf.dtype)
            zeros = self._zeros.get(key)
            if zeros is None:
                zeros = self._zeros[key] = np.zeros(leaf.size, dtype=leaf.dtype)
            if not math.isfinite(leaf.reshape(-1).dot(zeros)):
                return False
        return True

    def stack(self, rows: list, check_finite: bool = True) -> np.ndarray | None:
        """Observations of a flat space stacked [B, ...] with the space's dtype, or None
        when one does not fit: a shape, a dtype kind (no floats for an integer space), a
        Discrete value out of range, or (`check_finite`) NaN/inf (multi-agent runners, per
        module and step)."""
        try:
            x = np.asarray(rows) if self.integer else np.asarray(rows, dtype=self.dtype)
        except (TypeError, ValueError):
            return None
        if x.shape[1:] != self.shape:
            return None
        if self.integer:
            if x.dtype.kind not in "biu":
                return None
            if self.discrete is not None and not self.discrete.contains_batch(x):
                return None
            return x.astype(self.dtype, copy=False)
        if not check_finite:
            return x
        zeros = self._zeros.get(x.size)
        if zeros is None:
            zeros = self._zeros[x.size] = np.zeros(x.size, dtype=x.dtype)
        return x if math.isfinite(x.reshape(-1).dot(zeros)) else None

    # -- slow paths: convert or raise -----------------------------------------------------
    def flat_obs(self, obs: Any, where: str) -> tuple[np.ndarray, np.dtype]:
        """A flat observation that failed the inline check: (as an array, its dtype to
        accept by identity from now on), or an EnvError."""
        arr, why = leaf_problem(obs, self.space)
        if why:
            raise self.obs_error(why, where)
        return arr, arr.dtype

    def check_obs(self, obs: Any, where: str) -> Any:
        """A (nested) observation with arrays as leaves, or an EnvError."""
        out, why = obs_problem(obs, self.space)
        if why:
            raise self.obs_error(why, where)
        return out

    def obs_error(self, why: str, where: str) -> EnvError:
        """The EnvError for an observation that does not fit the space, with how to fix it.

        Args:
            why: What is wrong with the observation.
            where: Where it came from, e.g. "from reset()".
        """
        return EnvError(
            f"Env `{self.env_id}` returned an observation {where} that does not fit its "
            f"observation space {self.space}: {why}. Fix the env's observation space (or what "
            "it returns), or set the space in the config (`config.environment("
            "observation_space=...)`, or the module's spec for a multi-agent policy)."
        )

    def flags_error(self, term: Any, trunc: Any, where: str) -> EnvError | None:
        """None when both flags are bools (Python or numpy), else the error."""
        for name, flag in (("terminated", term), ("truncated", trunc)):
            if not isinstance(flag, bool | np.bool_):
                return EnvError(
                    f"Env `{self.env_id}`.step() returned `{name}`={describe(flag)} "
                    f"({type(flag).__name__}) {where}; it must be a bool: {GYMNASIUM_API}."
                    f" {OLD_GYM_HINT}"
                )
        return None

    def nonfinite_error(self, what: str, value: Any, where: str) -> EnvError:
        """The EnvError for a NaN or inf `what` (e.g. "reward") returned `where`."""
        return EnvError(
            f"Env `{self.env_id}` returned a non-finite {what} {where}: {describe(value)}. "
            f"NaN or inf in training data turns the weights into NaN. {NONFINITE_HINT}"
        )


class _DiscreteRange:
    """Whether a batch of Discrete values is in range (an embedding or one-hot of a value
    outside would fail, or silently read another row)."""

    def __init__(self, space: gym.spaces.Discrete):
        self.low, self.high = int(space.start), int(space.start + space.n)

    def contains_batch(self, x: np.ndarray) -> bool:
        return x.size == 0 or (self.low <= int(x.min()) and int(x.max()) < self.high)


def _leaf_spaces(space: gym.Space) -> list[gym.Space]:
    if isinstance(space, gym.spaces.Dict):
        return [x for s in space.spaces.values() for x in _leaf_spaces(s)]
    if isinstance(space, gym.spaces.Tuple):
        return [x for s in space.spaces for x in _leaf_spaces(s)]
    return [space]


def step_api_error(env_id: str, out: Any, where: str, multi_agent: bool = False) -> EnvError:
    """The error for a `step()` result that is not Gymnasium's 5-tuple (or whose reward is
    not a number): says what came back and how to fix it."""
    api = GYMNASIUM_API
    if multi_agent:
        api += " (for a MultiAgentEnv each of the five is a dict keyed by agent id)"
    if not isinstance(out, tuple) or len(out) != 5:
        got = f"a {len(out)}-tuple" if isinstance(out, tuple) else type(out).__name__
        return EnvError(f"Env `{env_id}`.step() returned {got} {where}, but {api}. {OLD_GYM_HINT}")
    reward, whose = out[1], ""
    if multi_agent and isinstance(reward, Mapping):
        for aid, r in reward.items():
            try:
                float(r)
            except (TypeError, ValueError):
                reward, whose = r, f" of agent {aid!r}"
                break
    return EnvError(
        f"Env `{env_id}`.step() returned the reward{whose} {describe(reward)} "
        f"({type(reward).__name__}) {where}; it must be a real number "
        f"(float or int{', per agent' if multi_agent else ''}): {api}."
    )


def reset_obs(env_id: str, result: Any, env_index: int, worker_index: int) -> Any:
    """The observation of a `reset()` result, or an EnvError if it is not `(obs, info)`."""
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        where = f"(sub-env {env_index} of runner {worker_index})"
        got = (
            f"a {len(result)}-tuple"
            if isinstance(result, tuple)
            else f"{type(result).__name__} {describe(result)}"
        )
        raise EnvError(
            f"Env `{env_id}`.reset() returned {got} {where}, but {GYMNASIUM_API} (`info` a "
            f"dict). {OLD_GYM_HINT}"
        )
    return result[0]
