"""Replay buffers in checkpoints (`store_buffer_in_checkpoints=True`): the filled slots as
one safetensors file and the metadata (nesting spec, ring position, priorities' settings)
as JSON. Nothing is pickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError

ARRAYS_FILE = "buffer.safetensors"
META_FILE = "buffer.json"


def save_buffer_state(directory: Path, state: tuple[dict[str, np.ndarray], dict[str, Any]]):
    """Write a buffer's `get_state()` into `directory`."""
    arrays, meta = state
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(directory / ARRAYS_FILE))
    ckpt.write_json(directory / META_FILE, meta)


def load_buffer_state(view: ckpt.CheckpointView) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what `save_buffer_state` wrote, from a verified checkpoint directory."""
    meta = view.read_json(META_FILE, "Replay buffer")
    return view.load_arrays(ARRAYS_FILE, "Replay buffer"), meta


def restore_buffer(buffer: Any, view: ckpt.CheckpointView) -> None:
    """Load the verified directory `view` into `buffer`; a buffer that does not fit is a
    CheckpointError."""
    arrays, meta = load_buffer_state(view)
    try:
        buffer.set_state(arrays, meta)
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(
            f"The replay buffer in `{view.path}` does not fit this algorithm's buffer ({e}). "
            "Set `replay_buffer_config` as it was when the checkpoint was written, or "
            "`store_buffer_in_checkpoints=False` to start with an empty buffer."
        ) from None
