"""Nested structures of arrays: what Dict and Tuple spaces give and take.

An observation of a `Dict` space is a dict of arrays, of a `Tuple` space a tuple; both
nest. Batches keep that structure (a dict of stacked arrays, ...), so these helpers map a
function over the leaves. A plain array is a structure with one leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np


def map_structure(fn: Callable[..., Any], *structs: Any) -> Any:
    """`fn` applied leaf-wise to structures of the same shape (dicts, tuples/lists, leaves)."""
    first = structs[0]
    if isinstance(first, dict):
        return {k: map_structure(fn, *(s[k] for s in structs)) for k in first}
    if isinstance(first, (tuple, list)):
        return tuple(map_structure(fn, *parts) for parts in zip(*structs))
    return fn(*structs)


def leaves(struct: Any) -> list[Any]:
    """The leaves, depth first (dicts in their key order)."""
    if isinstance(struct, dict):
        return [x for v in struct.values() for x in leaves(v)]
    if isinstance(struct, (tuple, list)):
        return [x for v in struct for x in leaves(v)]
    return [struct]


def first_leaf(struct: Any) -> Any:
    """The first leaf of a nest of dicts, tuples and lists (the struct itself if not nested)."""
    while isinstance(struct, (dict, tuple, list)):
        struct = next(iter(struct.values())) if isinstance(struct, dict) else struct[0]
    return struct


def stack(structs: list[Any]) -> Any:
    """A list of same-shaped structures -> one structure of stacked arrays."""
    return map_structure(lambda *xs: np.stack(xs), *structs)


def empty_like_space(space: gym.Space, leading: tuple[int, ...]) -> Any:
    """Uninitialized arrays for `leading` + one element of `space` (nested like the space)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: empty_like_space(s, leading) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(empty_like_space(s, leading) for s in space.spaces)
    shape = () if isinstance(space, gym.spaces.Discrete) else tuple(space.shape)
    return np.empty((*leading, *shape), dtype=space.dtype)


def assign(dst: Any, index: Any, src: Any) -> None:
    """dst[index] = src, leaf-wise."""
    if isinstance(dst, dict):
        for k in dst:
            assign(dst[k], index, src[k])
    elif isinstance(dst, tuple):
        for d, s in zip(dst, src):
            assign(d, index, s)
    else:
        dst[index] = src


def index(struct: Any, i: Any) -> Any:
    """struct[i], leaf-wise."""
    return map_structure(lambda x: x[i], struct)


# -- flat form: one named array per leaf (safetensors files hold no nesting) ---------------
def spec(struct: Any) -> Any:
    """The JSON-able shape of a nested structure: dicts and lists of None (= a leaf)."""
    if isinstance(struct, dict):
        for k in struct:
            if not isinstance(k, str) or "/" in k:
                raise TypeError(f"Nested keys must be strings without '/' to store, got {k!r}.")
        return {"dict": {k: spec(v) for k, v in struct.items()}}
    if isinstance(struct, (tuple, list)):
        return {"tuple": [spec(v) for v in struct]}
    return None


def flatten(struct: Any, prefix: str, out: dict[str, Any]) -> None:
    """Add the leaves of `struct` to `out` as `prefix/key/...` (a leaf: `prefix`)."""
    if isinstance(struct, dict):
        for k, v in struct.items():
            flatten(v, f"{prefix}/{k}", out)
    elif isinstance(struct, (tuple, list)):
        for i, v in enumerate(struct):
            flatten(v, f"{prefix}/{i}", out)
    else:
        out[prefix] = struct


def unflatten(spec: Any, prefix: str, arrays: dict[str, Any]) -> Any:
    """The structure `flatten` stored under `prefix` (leaves copied), nested as `spec`."""
    if spec is None:
        return np.array(arrays[prefix])
    if "dict" in spec:
        return {k: unflatten(s, f"{prefix}/{k}", arrays) for k, s in spec["dict"].items()}
    return tuple(unflatten(s, f"{prefix}/{i}", arrays) for i, s in enumerate(spec["tuple"]))
