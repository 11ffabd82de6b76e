"""Helpers for the time-major fragments that EnvRunners return."""

from __future__ import annotations

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils.errors import ConfigError
from scalerl.utils.nested import index, map_structure

# Fragment keys that are not time-major [T, N, ...] arrays.
_PER_ENV_KEYS = ("bootstrap_obs", "bootstrap_state")  # [N, ...]
# Index keys [K, 2] of (t, env) rows, and the keys whose rows [K, ...] they index.
_ROWS_OF = {
    "trunc_index": ("trunc_obs", "trunc_state"),
    "seq_index": (Columns.STATE_IN,),
}
_ROW_KEYS = {key: idx for idx, keys in _ROWS_OF.items() for key in keys}


def concat_fragments(fragments: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join [T, N_i] fragments of equal T along the env axis into one [T, sum N_i] fragment."""
    if len(fragments) == 1:
        return fragments[0]
    out: dict[str, np.ndarray] = {}
    offsets = np.cumsum([0] + [num_envs(f) for f in fragments[:-1]])
    for key in fragments[0]:
        parts = [f[key] for f in fragments]
        if key in _ROWS_OF:
            out[key] = np.concatenate(
                [p + np.array([0, off]) for p, off in zip(parts, offsets)]
            ).reshape(-1, 2)
        else:
            axis = 0 if key in _PER_ENV_KEYS or key in _ROW_KEYS else 1
            out[key] = map_structure(lambda *xs, a=axis: np.concatenate(xs, axis=a), *parts)
    return out


def num_envs(fragment: dict) -> int:
    return fragment[Columns.REWARDS].shape[1]


def split_fragment(fragment: dict[str, np.ndarray], n: int) -> list[dict[str, np.ndarray]]:
    """Split a [T, N] fragment along the env axis into `n` [T, N_i] fragments.

    The inverse of `concat_fragments` (up to the order of the truncation rows). Shard i
    gets envs [lo_i, hi_i), as even as possible (sizes differ by at most one env); each
    shard keeps the truncations (and sequence starts) of its envs, with `trunc_index` (and
    `seq_index`) re-indexed to its columns.
    Splitting along time instead would cut GAE's backward recursion, so it is not offered.
    """
    total = num_envs(fragment)
    if not 1 <= n <= total:
        raise ConfigError(
            f"Cannot split a batch of {total} env(s) over {n} learners: each learner "
            "needs whole env columns (GAE runs along time). Use at least `num_learners` envs "
            "in total (num_env_runners * num_envs_per_env_runner), or fewer learners."
        )
    if n == 1:
        return [fragment]
    sizes = [total // n + (i < total % n) for i in range(n)]
    bounds = np.cumsum([0, *sizes])
    shards = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        rows = {
            idx: (fragment[idx][:, 1] >= lo) & (fragment[idx][:, 1] < hi)
            for idx in _ROWS_OF
            if idx in fragment
        }
        shard: dict[str, np.ndarray] = {}
        for key, value in fragment.items():
            if key in _ROWS_OF:
                shard[key] = (value[rows[key]] - np.array([0, lo], dtype=value.dtype)).reshape(
                    -1, 2
                )
            elif key in _ROW_KEYS:
                shard[key] = index(value, rows[_ROW_KEYS[key]])
            elif key in _PER_ENV_KEYS:
                shard[key] = index(value, slice(lo, hi))
            else:
                shard[key] = index(value, (slice(None), slice(lo, hi)))
        shards.append(shard)
    return shards


def concat_columns(fragments: list[dict]) -> dict:
    """Join one-column [M_i, 1] fragments (multi-agent, see `MultiAgentEnvRunner`) end to
    end into one [sum M_i, 1] column. Every trajectory in them ends in a termination or a
    truncation row, so laying them end to end keeps GAE and n-step returns exact."""
    if len(fragments) == 1:
        return fragments[0]
    offsets = np.cumsum([0] + [len(f[Columns.REWARDS]) for f in fragments[:-1]])
    out: dict = {}
    for key in fragments[0]:
        parts = [f[key] for f in fragments]
        if key == "trunc_index":
            out[key] = np.concatenate([p + np.array([off, 0]) for p, off in zip(parts, offsets)])
            out[key] = out[key].reshape(-1, 2)
        elif key == "bootstrap_obs":
            out[key] = parts[-1]
        else:
            out[key] = map_structure(lambda *xs: np.concatenate(xs, axis=0), *parts)
    return out


def per_module(batches: list[dict[str, dict]]) -> dict[str, dict]:
    """Multi-agent EnvRunners' {module_id: [M, 1] fragment} batches, joined per module."""
    grouped: dict[str, list[dict]] = {}
    for batch in batches:
        for mid, fragment in batch.items():
            grouped.setdefault(mid, []).append(fragment)
    return {mid: concat_columns(parts) for mid, parts in grouped.items()}
