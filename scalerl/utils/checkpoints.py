"""Checkpoint file I/O: JSON for config and counters, safetensors for tensors.

Nothing here unpickles: loading a checkpoint never executes code stored in it.
Directories are written to a temporary sibling and renamed into place, so a crash
mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from scalerl.utils.errors import CheckpointError

ALGO_FILE = "algorithm_state.json"
MODULE_FILE = "rl_module.json"
WEIGHTS_FILE = "module_state.safetensors"


def as_path(path: Any) -> Path:
    """Accept a str, a Path, or a result with `.checkpoint.path` (as `Algorithm.save()` returns)."""
    checkpoint = getattr(path, "checkpoint", None)
    if checkpoint is not None:
        path = checkpoint.path
    return Path(os.fspath(path)).expanduser().resolve()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp dir that replaces `target` by rename on success (old copy kept till then)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CheckpointError(
            f"{what}: `{path}` is missing. Is `{path.parent}` a scalerl checkpoint directory "
            "(as written by `Algorithm.save()`)?"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{what}: `{path}` is corrupt or truncated ({e}).") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what}: `{path}` does not hold a JSON object.")
    return data


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{what}: `{path}` is missing from the checkpoint.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{what}: `{path}` is corrupt or truncated ({e}).") from None
