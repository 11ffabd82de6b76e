"""RLlib's `ray.rllib.utils.framework.try_import_torch` (scalerl always has torch)."""

from __future__ import annotations

from typing import Any


def try_import_torch(error: bool = False) -> tuple[Any, Any]:
    """(torch, torch.nn), as RLlib's helper returns them; `error` is accepted (torch is a
    dependency of scalerl, so the import cannot fail)."""
    import torch

    return torch, torch.nn
