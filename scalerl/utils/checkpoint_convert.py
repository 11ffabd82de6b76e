"""RLlib's `convert_to_msgpack_checkpoint`: RLlib converts its pickle checkpoints into
msgpack ones that load without unpickling. scalerl's checkpoints never hold pickles, so
"converting" one is a verified copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def convert_to_msgpack_checkpoint(checkpoint: Any, msgpack_checkpoint_dir: Any) -> str:
    """Copy the (verified) checkpoint `checkpoint` into `msgpack_checkpoint_dir` and
    return that path; the copy loads with `Algorithm.from_checkpoint` as the original.

    Raises:
        CheckpointError: If `checkpoint` fails its manifest check.
    """
    from scalerl.utils.checkpoints import as_path, open_checkpoint

    source = as_path(checkpoint)
    open_checkpoint(source, "Checkpoint")  # refuse a corrupt or tampered checkpoint
    target = Path(msgpack_checkpoint_dir)
    shutil.copytree(source, target, dirs_exist_ok=True)
    open_checkpoint(target, "Checkpoint")
    return str(target)
