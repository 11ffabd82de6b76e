"""JSON round trip of Gymnasium spaces, so checkpoints hold spaces as plain data."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """A JSON-able description of `space` (Box, Discrete, MultiDiscrete, MultiBinary, Tuple, Dict).

    Raises:
        TypeError: For any other kind of space.
    """
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    raise TypeError(
        f"Cannot store space {space!r}: supported are Box, Discrete, MultiDiscrete, "
        "MultiBinary, Tuple and Dict."
    )


def space_from_dict(d: dict[str, Any]) -> gym.Space:
    """The space that `space_to_dict` described (ValueError for an unknown type)."""
    kind = d["type"]
    if kind == "Box":
        return gym.spaces.Box(
            low=np.array(d["low"], dtype=d["dtype"]),
            high=np.array(d["high"], dtype=d["dtype"]),
            shape=tuple(d["shape"]),
            dtype=d["dtype"],
        )
    if kind == "Discrete":
        return gym.spaces.Discrete(d["n"], start=d.get("start", 0))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(d["nvec"], dtype=d["dtype"], start=d.get("start"))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(d["n"])
    if kind == "Tuple":
        return gym.spaces.Tuple([space_from_dict(s) for s in d["spaces"]])
    if kind == "Dict":
        return gym.spaces.Dict({k: space_from_dict(s) for k, s in d["spaces"].items()})
    raise ValueError(f"Unknown space type {kind!r} in stored space description.")
