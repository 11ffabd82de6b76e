"""MeanStdFilter: observation normalization with running statistics that merge exactly.

Each float `Box` leaf of the observation space keeps, per element, the count `n`, the
mean and `M2` (the sum of squared deviations from the mean). A batch is folded in, and
the statistics of several EnvRunners are merged, with the parallel update of Chan,
Golub and LeVeque (1979): for parts a and b with `delta = mean_b - mean_a`,

    n    = n_a + n_b
    mean = mean_a + delta * n_b / n
    M2   = M2_a + M2_b + delta**2 * n_a * n_b / n

which gives exactly the statistics of the concatenated data, in any order. The filtered
value is `clip((x - mean) / (std + eps), -clip_by_value, clip_by_value)` with the sample
standard deviation `std = sqrt(M2 / (n - 1))` (1 until two values were seen).

Integer leaves (uint8 images, Discrete, MultiDiscrete, MultiBinary) and the `action_mask`
of an action-mask observation pass through untouched.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.core.models.observations import MASK_KEY, is_action_mask_space
from scalerl.utils.errors import ConfigError, did_you_mean

EPS = 1e-8
FILTER_NAMES = ("NoFilter", "MeanStdFilter")
SETTINGS = ("de_mean_to_zero", "de_std_to_one", "clip_by_value", "update_stats")
STATE_FORMAT = "scalerl-mean-std-filter"


class RunningStat:
    """Count, mean and M2 of a stream of arrays of one shape (float64)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.n = 0
        self.mean = np.zeros(self.shape)
        self.m2 = np.zeros(self.shape)

    def push_batch(self, x: np.ndarray) -> None:
        """Fold in a batch `x` of shape [B, *shape]."""
        self.merge(*_batch_stats(np.asarray(x, dtype=np.float64), self.shape))

    def merge(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        """Chan et al.'s parallel update with the statistics of another part."""
        if n_b == 0:
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.n * n_b / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        """The sample standard deviation per element (ones until two values are seen)."""
        if self.n < 2:
            return np.ones(self.shape)
        return np.sqrt(self.m2 / (self.n - 1))

    def to_state(self) -> dict[str, Any]:
        """The count, mean and sum of squared deviations (Welford's m2) as JSON-able values."""
        return {"n": self.n, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    def set_from_state(self, state: dict[str, Any], where: str) -> None:
        """Load the state that `to_state` returned.

        Args:
            state: {"n", "mean", "m2"}.
            where: Where the state came from, to start the error message with.

        Raises:
            ValueError: If the shapes differ from this statistic's or the count is not an int >= 0.
        """
        mean = np.asarray(state["mean"], dtype=np.float64)
        m2 = np.asarray(state["m2"], dtype=np.float64)
        n = state["n"]
        if mean.shape != self.shape or m2.shape != self.shape:
            raise ValueError(
                f"{where}: statistics of shape {mean.shape}/{m2.shape}, expected {self.shape}"
            )
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{where}: count must be an integer >= 0, got {n!r}")
        self.n, self.mean, self.m2 = n, mean, m2


def filtered_leaves(space: gym.Space, path: tuple = ()) -> list[tuple[tuple, gym.spaces.Box]]:
    """(path, space) of every leaf the filter normalizes: Box leaves of a float dtype."""
    if isinstance(space, gym.spaces.Dict):
        skip = MASK_KEY if not path and is_action_mask_space(space) else None
        return [
            x for k, s in space.spaces.items() if k != skip for x in filtered_leaves(s, (*path, k))
        ]
    if isinstance(space, gym.spaces.Tuple):
        return [x for i, s in enumerate(space.spaces) for x in filtered_leaves(s, (*path, i))]
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return [(path, space)]
    return []


def _path_name(path: tuple) -> str:
    return "/".join(str(p) for p in path) or "<root>"


class MeanStdFilter:
    """Normalizes observations to mean 0 and std 1 with running statistics (RLlib's
    `ray.rllib.connectors.env_to_module.MeanStdFilter`).

    Use it as `config.env_runners(env_to_module_connector=lambda env: MeanStdFilter())`
    or, equivalently, `config.env_runners(observation_filter="MeanStdFilter")`.

    Two sets of statistics are kept: the running ones used to filter, and the delta (what
    this copy saw since its last `reset_delta()`). EnvRunners send their delta to the
    driver, which merges them (`merge_states`) and sends the merged running statistics
    back with the weights (`set_state`).

    Args:
        multi_agent: Accepted for RLlib compatibility and ignored: in multi-agent runs
            every module gets its own filter (`MultiAgentMeanStdFilter`) either way.
        de_mean_to_zero: Subtract the running mean.
        de_std_to_one: Divide by the running standard deviation (+ 1e-8).
        clip_by_value: Clip the filtered values to [-clip_by_value, clip_by_value]; None
            for no clipping.
        update_stats: Whether sampling for training updates the statistics (evaluation
            and `compute_single_action` never do).
        input_observation_space: The observation space; set later with `setup()` when
            not given.
    """

    def __init__(
        self,
        *,
        multi_agent: bool = False,
        de_mean_to_zero: bool = True,
        de_std_to_one: bool = True,
        clip_by_value: float | None = 10.0,
        update_stats: bool = True,
        input_observation_space: gym.Space | None = None,
    ):
        self.de_mean_to_zero = de_mean_to_zero
        self.de_std_to_one = de_std_to_one
        self.clip_by_value = clip_by_value
        self.update_stats = update_stats
        validate_settings(self.settings)
        self.paths: list[tuple] = []
        self.spaces: list[gym.spaces.Box] = []
        self.running: list[RunningStat] = []
        self.delta: list[RunningStat] = []
        self.observation_space: gym.Space | None = None
        if input_observation_space is not None:
            self.setup(input_observation_space)

    @property
    def settings(self) -> dict[str, Any]:
        """The constructor arguments, as JSON-able data (what a config stores)."""
        return {k: getattr(self, k) for k in SETTINGS}

    def setup(self, observation_space: gym.Space) -> MeanStdFilter:
        """Fresh statistics for each float Box leaf of `observation_space`."""
        self.observation_space = observation_space
        leaves = filtered_leaves(observation_space)
        self.paths = [p for p, _ in leaves]
        self.spaces = [s for _, s in leaves]
        self.running = [RunningStat(s.shape) for _, s in leaves]
        self.delta = [RunningStat(s.shape) for _, s in leaves]
        return self

    # -- filtering ---------------------------------------------------------------------
    def __call__(self, obs: Any, update: bool = True) -> Any:
        """Filter a batch of observations (leading axis = batch, nested like the space).

        With `update` (and `update_stats`), the batch first joins the statistics, as in
        RLlib. Leaves that are not normalized are returned as they are.
        """
        if self.observation_space is None:
            raise RuntimeError("MeanStdFilter.setup(observation_space) was not called.")
        if not self.paths:
            return obs
        update = update and self.update_stats
        values = {}
        for path, space, running, delta in zip(self.paths, self.spaces, self.running, self.delta):
            x = np.asarray(_get(obs, path), dtype=np.float64)
            if update:
                n, mean, m2 = _batch_stats(x, running.shape)
                running.merge(n, mean, m2)
                delta.merge(n, mean, m2)
            if self.de_mean_to_zero:
                x = x - running.mean
            if self.de_std_to_one:
                x = x / (running.std + EPS)
            if self.clip_by_value is not None:
                x = np.clip(x, -self.clip_by_value, self.clip_by_value)
            values[path] = x.astype(space.dtype, copy=False)
        return _replace(obs, values)

    # -- state -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Settings and running statistics as JSON-able data."""
        return self._state(self.running)

    def get_delta_state(self) -> dict[str, Any]:
        """Settings and the statistics gathered since the last `reset_delta()`."""
        return self._state(self.delta)

    def _state(self, stats: list[RunningStat]) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "settings": self.settings,
            "leaves": [{"path": _path_name(p), **s.to_state()} for p, s in zip(self.paths, stats)],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Replace the running statistics (the delta is kept). Raises ValueError when the
        state was made for another observation space."""
        self.running = self._stats_from_state(state)

    def merge_states(self, states: list[dict[str, Any]]) -> None:
        """Fold other copies' delta states (`get_delta_state()`) into the running stats."""
        for state in states:
            for stat, part in zip(self.running, self._stats_from_state(state)):
                stat.merge(part.n, part.mean, part.m2)

    def reset_delta(self) -> None:
        """Start a new delta: empty statistics, collected until the next `get_delta_state()`."""
        self.delta = [RunningStat(s.shape) for s in self.running]

    def _stats_from_state(self, state: Any) -> list[RunningStat]:
        """New statistics from a state, checked against this filter's leaves first."""
        stats = []
        for leaf, shape in zip(self._check_state(state), (s.shape for s in self.running)):
            stat = RunningStat(shape)
            stat.set_from_state(leaf, f"leaf `{leaf['path']}`")
            stats.append(stat)
        return stats

    def _check_state(self, state: Any) -> list[dict[str, Any]]:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a MeanStdFilter state (expected format {STATE_FORMAT!r})")
        leaves = state.get("leaves")
        names = [_path_name(p) for p in self.paths]
        if not isinstance(leaves, list) or not all(isinstance(leaf, dict) for leaf in leaves):
            raise ValueError("`leaves` must be a list of objects")
        got = [leaf.get("path") for leaf in leaves]
        if got != names:
            raise ValueError(
                f"the state holds statistics for leaves {got}, but this observation space "
                f"has float Box leaves {names}"
            )
        if not all(k in leaf for leaf in leaves for k in ("n", "mean", "m2")):
            raise ValueError("a leaf lacks one of the entries `n`, `mean`, `m2`")
        return leaves


def _batch_stats(x: np.ndarray, shape: tuple) -> tuple[int, np.ndarray, np.ndarray]:
    x = x.reshape(-1, *shape)
    mean = x.mean(axis=0)
    return len(x), mean, np.square(x - mean).sum(axis=0)


def _get(obs: Any, path: tuple) -> Any:
    for key in path:
        obs = obs[key]
    return obs


def _replace(obs: Any, values: dict[tuple, Any], path: tuple = ()) -> Any:
    """`obs` with the leaves at the paths in `values` replaced (containers are rebuilt)."""
    if path in values:
        return values[path]
    if isinstance(obs, dict):
        return {k: _replace(v, values, (*path, k)) for k, v in obs.items()}
    if isinstance(obs, (tuple, list)):
        return tuple(_replace(v, values, (*path, i)) for i, v in enumerate(obs))
    return obs


def validate_settings(settings: dict[str, Any]) -> None:
    """ConfigError unless `settings` are valid MeanStdFilter arguments."""
    unknown = [k for k in settings if k not in (*SETTINGS, "type")]
    if unknown:
        hint = did_you_mean(unknown[0], SETTINGS)
        raise ConfigError(
            f"MeanStdFilter got unknown setting(s) {unknown}.{hint} Valid: {', '.join(SETTINGS)}."
        )
    for key in ("de_mean_to_zero", "de_std_to_one", "update_stats"):
        if not isinstance(settings.get(key, True), bool):
            raise ConfigError(f"MeanStdFilter `{key}` must be a bool, got {settings[key]!r}.")
    clip = settings.get("clip_by_value", 10.0)
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float)):
        raise ConfigError(f"MeanStdFilter `clip_by_value` must be > 0 or None, got {clip!r}.")
    if clip is not None and not clip > 0:
        raise ConfigError(f"MeanStdFilter `clip_by_value` must be > 0 or None, got {clip!r}.")


# -- config: `observation_filter` and `env_to_module_connector` ----------------------------
def validate_observation_filter(value: Any) -> None:
    """ConfigError unless `value` is "NoFilter", "MeanStdFilter" or the stored form
    `{"type": "MeanStdFilter", <MeanStdFilter settings>}`."""
    if isinstance(value, dict) and value.get("type") == "MeanStdFilter":
        validate_settings(value)
        return
    if isinstance(value, str) and value in FILTER_NAMES:
        return
    hint = did_you_mean(value, FILTER_NAMES) if isinstance(value, str) else ""
    raise ConfigError(
        f"`observation_filter` {value!r} is not supported.{hint} Valid: "
        f"{', '.join(repr(n) for n in FILTER_NAMES)} (or "
        "`env_to_module_connector=lambda env: MeanStdFilter(...)`)."
    )


def build_observation_filter(value: Any, observation_space: gym.Space) -> MeanStdFilter | None:
    """The filter an `observation_filter` setting asks for (None for "NoFilter")."""
    validate_observation_filter(value)
    if value == "NoFilter":
        return None
    settings = {k: v for k, v in value.items() if k != "type"} if isinstance(value, dict) else {}
    return MeanStdFilter(**settings, input_observation_space=observation_space)


def check_env_to_module_connector(connector: Any) -> None:
    """ConfigError unless `connector` is a callable that returns the connector."""
    if not callable(connector) or isinstance(connector, MeanStdFilter):
        raise ConfigError(
            "`env_to_module_connector` must be a callable that returns the connector, "
            f"such as `lambda env: MeanStdFilter()`, got {connector!r}."
        )


def resolve_env_to_module_connector(
    connector: Any,
    env: gym.Env | None,
    spaces: tuple[gym.Space, gym.Space],
    custom_module: bool = False,
) -> dict[str, Any] | str:
    """Call a user's `env_to_module_connector` once and return the `observation_filter`
    setting it stands for, so the config stays JSON-able (a lambda cannot be stored).

    As in RLlib the callable gets `(env)` or `(env, spaces, device)`; `env` is None when
    the config gives both spaces and no env was created. It may return one piece or a
    list: a `MeanStdFilter` (at most one) and `FlattenObservations`, which the default
    modules already do (see `flatten_observations.py`; refused with `custom_module`).
    """
    check_env_to_module_connector(connector)
    try:
        params = inspect.signature(connector).parameters.values()
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    except (TypeError, ValueError):  # builtins without a signature
        positional, varargs = [None], False
    env_spaces = {"__env__": spaces, "__env_single__": spaces}
    args = (env, env_spaces, "cpu")[: 3 if varargs else len(positional)]
    result = connector(*args)
    pieces = list(result) if isinstance(result, (list, tuple)) else [result]
    for piece in pieces:
        if type(piece).__name__ == "FlattenObservations":
            check_flatten_observations(piece, spaces[0], custom_module)
    filters = [p for p in pieces if type(p).__name__ != "FlattenObservations"]
    if not filters:
        return "NoFilter"
    if len(filters) > 1 or not isinstance(filters[0], MeanStdFilter):
        raise ConfigError(
            f"`env_to_module_connector` returned {result!r}; scalerl does not support "
            "custom env-to-module connectors yet: only `MeanStdFilter(...)` and "
            "`FlattenObservations()` (or a list of them) can go there so far."
        )
    return {"type": "MeanStdFilter", **filters[0].settings}


def check_flatten_observations(piece: Any, obs_space: gym.Space | None, custom: bool) -> None:
    """ConfigError unless FlattenObservations is what the default modules do anyway."""
    from scalerl.core.models.observations import is_image_space, space_leaves

    why = None
    if custom:
        why = "with a custom RLModule (it would get the observation unflattened)"
    elif piece.keys_to_remove:
        why = "with `keys_to_remove`"
    elif obs_space is not None and any(is_image_space(s) for _, s in space_leaves(obs_space)):
        why = "on image observations (the default modules send them through a CNN)"
    if why:
        raise ConfigError(
            f"scalerl does not support `FlattenObservations` {why} yet; without it the "
            "default modules flatten and one-hot the observation themselves."
        )
