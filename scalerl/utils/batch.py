"""Fragments by their schema: concatenate, split, and the flat on-disk form.

Every rule here follows a column's `Layout` in `scalerl.utils.batch_schema`; a column the
schema does not declare is an `UnknownColumnError`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils import nested
from scalerl.utils.batch_schema import FRAGMENT, SCHEMAS, BatchSchema, Layout
from scalerl.utils.errors import ConfigError

FLAT_FORMAT = "scalerl.batch"
FLAT_VERSION = 1


def num_envs(fragment: dict) -> int:
    """N of a [T, N] fragment."""
    return fragment[Columns.REWARDS].shape[1]


def _concat(fragments: list[dict], along_time: bool) -> dict:
    """Join fragments along envs ([T, N_1 + N_2]) or along time ([M_1 + M_2, 1])."""
    for fragment in fragments:
        FRAGMENT.check(fragment)
    if len(fragments) == 1:
        return fragments[0]
    axis = 0 if along_time else 1  # of the grid: TIME_MAJOR data, ROW_INDEX's (t, env)
    sizes = [f[Columns.REWARDS].shape[axis] for f in fragments[:-1]]
    offsets = np.cumsum([0, *sizes])
    out: dict[str, Any] = {}
    for key in fragments[0]:
        parts = [f[key] for f in fragments]
        layout = FRAGMENT[key].layout
        if layout is Layout.ROW_INDEX:
            shift = np.zeros(2, dtype=np.int64)
            rows = []
            for part, offset in zip(parts, offsets):
                shift[axis] = offset
                rows.append(np.asarray(part, dtype=np.int64).reshape(-1, 2) + shift)
            out[key] = np.concatenate(rows)
        elif layout is Layout.PER_ENV and along_time:
            # A copy: one row per module, and Ray's object store hands out read-only arrays.
            out[key] = nested.map_structure(np.copy, parts[-1])
        else:
            cat_axis = axis if layout is Layout.TIME_MAJOR else 0
            out[key] = nested.map_structure(
                lambda *xs, a=cat_axis: np.concatenate(xs, axis=a), *parts
            )
    return out


def concat_fragments(fragments: list[dict[str, Any]]) -> dict[str, Any]:
    """Join [T, N_i] fragments of equal T along the env axis into one [T, sum N_i] fragment."""
    return _concat(fragments, along_time=False)


def concat_columns(fragments: list[dict]) -> dict:
    """Join one-column [M_i, 1] fragments (multi-agent, see `MultiAgentEnvRunner`) end to
    end into one [sum M_i, 1] column. Every trajectory in them ends in a termination or a
    truncation row, so laying them end to end keeps GAE and n-step returns exact."""
    return _concat(fragments, along_time=True)


def split_fragment(fragment: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Split a [T, N] fragment along the env axis into `n` [T, N_i] fragments.

    The inverse of `concat_fragments` (up to the order of the ROW_INDEX rows). Shard i
    gets envs [lo_i, hi_i), as even as possible (sizes differ by at most one env); each
    shard keeps the truncations (and sequence starts) of its envs, with `trunc_index` (and
    `seq_index`) re-indexed to its columns.
    Splitting along time instead would cut GAE's backward recursion, so it is not offered.
    """
    FRAGMENT.check(fragment)
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
    bounds = np.cumsum([0, *sizes]).tolist()
    return [_slice(fragment, ENVS, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def split_column(fragment: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
    """Split a one-column [M, 1] fragment (multi-agent) along time into `n` parts of about
    equal length, cutting only after termination or truncation rows, so every part holds
    whole trajectories and GAE and n-step returns stay exact; None if the column has fewer
    than `n` trajectories.

    Every part but the last ends in such a row, so the `bootstrap_obs` (and state) that
    all parts keep is read only in the last, as after `concat_columns`.
    """
    FRAGMENT.check(fragment)
    ends = np.flatnonzero(
        np.logical_or(fragment[Columns.TERMINATEDS][:, 0], fragment[Columns.TRUNCATEDS][:, 0])
    )
    length = fragment[Columns.REWARDS].shape[0]
    cuts: list[int] = []
    for i in range(1, n):  # after the trajectory end nearest to each 1/n of the column
        free = ends + 1
        free = free[(free > (cuts[-1] if cuts else 0)) & (free < length)]
        if len(free):
            cuts.append(int(free[np.argmin(np.abs(free - i * length / n))]))
    if len(cuts) < n - 1:
        return None
    bounds = [0, *cuts, length]
    return [_slice(fragment, TIME, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


TIME, ENVS = 0, 1  # the axes of a fragment's [T, N] grid


def _slice(fragment: dict[str, Any], axis: int, lo: int, hi: int) -> dict[str, Any]:
    """Rows [lo, hi) of a fragment's grid along `axis` (TIME or ENVS), by each column's
    layout: ROW_INDEX rows inside the range, re-indexed to it, and their ROWS; PER_ENV
    rows of those envs (along time: all of them, for the part's last row)."""
    inside = {
        key: (fragment[key][:, axis] >= lo) & (fragment[key][:, axis] < hi)
        for key in fragment
        if FRAGMENT[key].layout is Layout.ROW_INDEX
    }
    grid = [slice(None), slice(None)]
    grid[axis] = slice(lo, hi)
    part: dict[str, Any] = {}
    for key, value in fragment.items():
        column = FRAGMENT[key]
        if column.layout is Layout.ROW_INDEX:
            shift = np.zeros(2, dtype=value.dtype)
            shift[axis] = lo
            part[key] = (value[inside[key]] - shift).reshape(-1, 2)
        elif column.layout is Layout.ROWS:
            part[key] = nested.index(value, inside[column.index])
        elif column.layout is Layout.PER_ENV:
            part[key] = value if axis == TIME else nested.index(value, slice(lo, hi))
        else:
            part[key] = nested.index(value, tuple(grid))
    return part


def split_samples(batch: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
    """Split a replayed batch (TRANSITIONS `[B]` or SEQUENCES `[B, L]`) into `n` contiguous
    runs of samples (sizes differ by at most one); None if it has fewer than `n` samples."""
    size = len(nested.first_leaf(batch[Columns.REWARDS]))
    if size < n:
        return None
    bounds = np.cumsum([0, *(size // n + (i < size % n) for i in range(n))])
    return [
        {k: nested.index(v, slice(lo, hi)) for k, v in batch.items()}
        for lo, hi in zip(bounds[:-1], bounds[1:])
    ]


def split_for_learners(batch: dict[str, Any], n: int) -> tuple[list[dict[str, Any]], bool]:
    """One shard of `batch` per data-parallel learner, and whether they are copies.

    A fragment (it has `bootstrap_obs`) splits along envs (`split_fragment`), or, as one
    [M, 1] column, along time at trajectory ends (`split_column`); a replayed batch splits
    along its samples. A batch too small to split goes whole to every learner (True): the
    averaged gradient is then that of the whole batch, and per-sample outputs (TD errors)
    come from the first learner only.
    """
    if n == 1:
        return [batch], False
    if Columns.BOOTSTRAP_OBS in batch:
        if num_envs(batch) >= n:
            return split_fragment(batch, n), False
        parts = split_column(batch, n) if num_envs(batch) == 1 else None
    else:
        parts = split_samples(batch, n)
    if parts is None:
        return [batch] * n, True
    return parts, False


def per_module(batches: list[dict[str, dict]]) -> dict[str, dict]:
    """Multi-agent EnvRunners' {module_id: [M, 1] fragment} batches, joined per module."""
    grouped: dict[str, list[dict]] = {}
    for batch in batches:
        for mid, fragment in batch.items():
            grouped.setdefault(mid, []).append(fragment)
    return {mid: concat_columns(parts) for mid, parts in grouped.items()}


# -- the flat on-disk form ------------------------------------------------------------------
def to_flat(
    batch: dict[str, Any], schema: BatchSchema = FRAGMENT
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A batch as (flat name -> array, JSON-able metadata), e.g. for safetensors.

    Nested columns (Dict/Tuple observations, state dicts) become one array per leaf,
    named `column/key/...` (`nested.flatten`); the metadata holds the schema kind, each
    column's layout (and index) and nesting spec. `from_flat` inverts it exactly.
    """
    schema.check(batch)
    arrays: dict[str, np.ndarray] = {}
    columns: dict[str, Any] = {}
    for name, value in batch.items():
        column = schema[name]
        nested.flatten(value, name, arrays)
        columns[name] = {"layout": column.layout.value, "spec": nested.spec(value)}
        if column.index is not None:
            columns[name]["index"] = column.index
    meta = {"format": FLAT_FORMAT, "version": FLAT_VERSION, "schema": schema.kind}
    meta["columns"] = columns
    json.dumps(meta)  # fail here, not in the writer, if not JSON-able
    return {k: np.asarray(v) for k, v in arrays.items()}, meta


def from_flat(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """The batch `to_flat` flattened; its columns must have the layouts this scalerl's
    schema gives them."""
    if meta.get("format") != FLAT_FORMAT or meta.get("version") != FLAT_VERSION:
        raise ValueError(
            f"Not a scalerl batch (format {meta.get('format')!r}, version "
            f"{meta.get('version')!r}; expected {FLAT_FORMAT!r}, {FLAT_VERSION})."
        )
    schema = SCHEMAS[meta["schema"]]
    batch: dict[str, Any] = {}
    for name, info in meta["columns"].items():
        column = schema[name]
        if column.layout.value != info["layout"] or column.index != info.get("index"):
            raise ValueError(
                f"Stored column `{name}` has layout {info['layout']!r}, but the "
                f"{schema.kind} schema says {column.layout.value!r}."
            )
        batch[name] = nested.unflatten(info["spec"], name, arrays)
    return batch


def save_batch(path: Any, batch: dict[str, Any], schema: BatchSchema = FRAGMENT) -> None:
    """Write a batch as one safetensors file (the metadata JSON in its header)."""
    from safetensors.numpy import save_file

    arrays, meta = to_flat(batch, schema)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    save_file(arrays, str(path), metadata={FLAT_FORMAT: json.dumps(meta)})


def load_batch(path: Any) -> dict[str, Any]:
    """Read a batch that `save_batch` wrote."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {}).get(FLAT_FORMAT, "{}"))
        arrays = {k: f.get_tensor(k) for k in f.keys()}
    return from_flat(arrays, meta)
