"""Helpers for the time-major fragments that EnvRunners return."""

from __future__ import annotations

import numpy as np


def concat_fragments(fragments: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join [T, N_i] fragments of equal T along the env axis into one [T, sum N_i] fragment."""
    if len(fragments) == 1:
        return fragments[0]
    out: dict[str, np.ndarray] = {}
    offsets = np.cumsum([0] + [f["bootstrap_obs"].shape[0] for f in fragments[:-1]])
    for key in fragments[0]:
        if key == "trunc_index":
            out[key] = np.concatenate(
                [f[key] + np.array([0, off]) for f, off in zip(fragments, offsets)]
            ).reshape(-1, 2)
        elif key in ("bootstrap_obs", "trunc_obs"):
            out[key] = np.concatenate([f[key] for f in fragments], axis=0)
        else:
            out[key] = np.concatenate([f[key] for f in fragments], axis=1)
    return out
