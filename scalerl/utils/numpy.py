"""RLlib's `ray.rllib.utils.numpy` helpers that its examples use."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def convert_to_numpy(x: Any) -> Any:
    """Tensors (nested in dicts, lists and tuples) as numpy arrays; other values as given."""
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    if isinstance(x, dict):
        return {k: convert_to_numpy(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(convert_to_numpy(v) for v in x)
    return x


def softmax(x: Any, axis: int = -1, epsilon: float | None = None) -> np.ndarray:
    """The softmax of `x` along `axis` (numerically stable), at least `epsilon` if given."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    out = e / np.sum(e, axis=axis, keepdims=True)
    return np.maximum(out, epsilon) if epsilon is not None else out
