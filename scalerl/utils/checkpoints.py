"""Checkpoint files: JSON for config and counters, safetensors for tensors, one manifest.

A checkpoint directory holds the files it lists in its manifest, `scalerl_checkpoint.json`
(every file with its SHA-256, the manifest's own digest included), and possibly files of
the user's, which saving never touches. Loading reads only files the manifest lists, each
checked against its digest as it is read; nothing is unpickled.

Saving (`write_checkpoint`) is crash-safe. The new checkpoint is written into a staging
directory inside the target and then moved in one top-level entry at a time, each move an
atomic exchange, the manifest last. At every instant each entry of the old and of the new
checkpoint sits either in the target or in the staging directory, and the manifest in the
target names the complete one: the reader looks there first, then in a staging directory
(`open_checkpoint`). The next save finishes or undoes an interrupted one before it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_numpy_bytes
from safetensors.torch import load as load_torch_bytes
from safetensors.torch import save_file

from scalerl.utils.errors import CheckpointError

ALGO_FILE = "algorithm_state.json"
MODULE_FILE = "rl_module.json"
WEIGHTS_FILE = "module_state.safetensors"
MANIFEST_FILE = "scalerl_checkpoint.json"
MANIFEST_FORMAT = "scalerl-checkpoint"
MANIFEST_VERSION = 2
STAGING_PREFIX = ".scalerl-save-"
SWAP_DIR = ".swap"  # inside a staging dir: where the no-exchange fallback parks an entry
# A module id becomes a directory name: letters, digits, `_`, `-`, `.` (not `.` or `..`).
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def as_path(path: Any) -> Path:
    """Accept a str, a Path, or a result with `.checkpoint.path` (as `Algorithm.save()` returns)."""
    checkpoint = getattr(path, "checkpoint", None)
    if checkpoint is not None:
        path = checkpoint.path
    return Path(os.fspath(path)).expanduser().resolve()


def check_module_id(module_id: Any, where: str = "module id") -> str:
    """A module id that is safe as a directory name, or a CheckpointError saying why not."""
    if not (isinstance(module_id, str) and SAFE_NAME.match(module_id)) or module_id in (".", ".."):
        raise CheckpointError(
            f"The {where} {module_id!r} cannot name a checkpoint directory: use letters, "
            "digits, `_`, `-` and `.` only (at most 128 characters, not `.` or `..`)."
        )
    return module_id


def sha256_file(path: Path) -> str:
    """The hex SHA-256 digest of the file at `path`, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------
def write_json(path: Path, obj: Any) -> None:
    """Write `obj` to `path` as indented JSON with sorted keys, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write `tensors` to `path` as safetensors (detached, on CPU, contiguous), creating parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


@contextlib.contextmanager
def write_checkpoint(target: Path, kind: str) -> Iterator[Path]:
    """Yield an empty directory to write a checkpoint into; on success it replaces the
    checkpoint in `target` (files the previous checkpoint did not list stay as they are).

    Args:
        target: The checkpoint directory (created if needed; may hold the user's files).
        kind: What the checkpoint holds ("Algorithm" or "RLModule"), recorded in the manifest.

    Raises:
        CheckpointError: `target` holds a file where the checkpoint would write one, that
            the previous checkpoint did not write (nothing is changed then).
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"Cannot save a checkpoint to `{target}`: it is a file.")
    target.mkdir(parents=True, exist_ok=True)
    with _save_lock(target):
        recover(target)
        old = _owned_entries(target)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
        committing = False
        try:
            yield staging
            write_manifest(staging, kind)
            new = {p.name for p in staging.iterdir()}
            for name in sorted(new - old):
                if os.path.lexists(target / name):
                    raise CheckpointError(
                        f"Cannot save a checkpoint to `{target}`: `{target / name}` exists and "
                        "was not written by the checkpoint there. Move it away, or save to "
                        "another directory."
                    )
            _fsync_tree(staging)
            committing = True
            _commit(target, staging, old, new)
        except BaseException:
            if not committing:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)  # it now holds the old checkpoint


def _commit(target: Path, staging: Path, old: set[str], new: set[str]) -> None:
    """Move the staged entries in (and the old ones out), the manifest last: replacing it
    is the one atomic step that switches readers from the old checkpoint to the new."""
    for name in sorted((old | new) - {MANIFEST_FILE}):
        if name in new and name in old:
            exchange(staging / name, target / name)  # the old entry stays findable
        elif name in new:
            os.rename(staging / name, target / name)
        else:
            os.rename(target / name, staging / name)
    _fsync_dir(target)
    os.replace(staging / MANIFEST_FILE, target / MANIFEST_FILE)
    _fsync_dir(target)


def recover(target: Path) -> None:
    """Finish cleaning up after saves into `target` that were interrupted (a crash between
    moves): bring back whatever entries of the manifest's checkpoint sit in a staging
    directory, move out entries of an unfinished new one, and remove the staging dirs."""
    stagings = sorted(target.glob(STAGING_PREFIX + "*"))
    if not stagings:
        return
    if (target / MANIFEST_FILE).is_file():
        view = open_checkpoint(target, "Checkpoint", allow_unverified=False)
        for name in view.top_level():
            src = view.locate_entry(name)
            if src != target / name:
                if os.path.lexists(target / name):
                    exchange(src, target / name)
                else:
                    os.rename(src, target / name)
        keep = set(view.top_level()) | {MANIFEST_FILE}
    else:
        keep = set()
    for staging in stagings:
        unfinished = _read_manifest_files(staging / MANIFEST_FILE)
        for name in {PurePosixPath(f).parts[0] for f in unfinished} | {MANIFEST_FILE}:
            # An entry of a save that never reached its manifest swap, moved in already.
            if (
                name not in keep
                and os.path.lexists(target / name)
                and not os.path.lexists(staging / name)
            ):
                os.rename(target / name, staging / name)
        shutil.rmtree(staging, ignore_errors=True)
    _fsync_dir(target)


def _owned_entries(target: Path) -> set[str]:
    """Top-level names the checkpoint in `target` wrote (empty if there is none)."""
    files: dict[str, str] | None = None
    if (target / MANIFEST_FILE).is_file():
        files = open_checkpoint(target, "Checkpoint").files
        files = {**files, MANIFEST_FILE: ""}
    elif (target / ALGO_FILE).is_file():
        legacy = _legacy_files(target)
        if legacy is not None:
            files = {**legacy, ALGO_FILE: ""}
    if not files:
        return set()
    owned = {PurePosixPath(f).parts[0] for f in files}
    listed = {Path(target, f) for f in files}
    strays = [
        p
        for name in owned
        if (target / name).is_dir()
        for p in (target / name).rglob("*")
        if not p.is_dir() and p not in listed
    ]
    if strays:
        raise CheckpointError(
            f"Cannot save a checkpoint to `{target}`: the checkpoint there holds files it did "
            f"not write ({', '.join(str(p) for p in strays[:5])}); saving would remove them. "
            "Move them away, or save to another directory."
        )
    return owned


def _legacy_files(target: Path) -> dict[str, str] | None:
    """A format-1 checkpoint's file list, when every listed file matches its digest."""
    try:
        state = json.loads((target / ALGO_FILE).read_text())
        files = state["files"] if state.get("format") == "scalerl-algorithm" else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(files, dict):
        return None
    for rel, digest in files.items():
        if not (_safe_relpath(rel) and _is_plain_file(target, rel)):
            return None
        if sha256_file(target / rel) != digest:
            return None
    return files


def write_manifest(directory: Path, kind: str) -> None:
    """List every file under `directory` with its digest in `directory/scalerl_checkpoint.json`
    (a module directory inside an algorithm checkpoint has its own, so that it loads alone)."""
    files = {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST_FILE
    }
    body = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "kind": kind, "files": files}
    body["manifest_sha256"] = _digest_of(body)
    write_json(directory / MANIFEST_FILE, body)


def _digest_of(body: dict) -> str:
    data = {k: v for k, v in body.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# -- atomic exchange, locking, fsync ------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _load_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_renameat2 = _load_renameat2()


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`); where the file system
    cannot, by three renames through the staging dir's `.swap` (readers look there too)."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no exchange here
            raise OSError(err, os.strerror(err), str(b))
    park = a.parent / SWAP_DIR / a.name
    park.parent.mkdir(exist_ok=True)
    os.rename(b, park)
    os.rename(a, b)
    os.rename(park, a)


@contextlib.contextmanager
def _save_lock(target: Path) -> Iterator[None]:
    """One save at a time into `target` (an advisory lock on the directory itself)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- reading -------------------------------------------------------------------------------
def _safe_relpath(rel: Any) -> bool:
    """A manifest path stays inside the checkpoint: relative, no `..`, no backslashes."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and all(part not in ("", ".", "..") for part in rel.split("/"))


def _is_plain_file(root: Path, rel: str) -> bool:
    """`root/rel` is a regular file reached through no symbolic link."""
    path = root
    parts = rel.split("/")
    for i, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return False
        if stat.S_ISLNK(mode) or (i < len(parts) - 1 and not stat.S_ISDIR(mode)):
            return False
    return stat.S_ISREG(mode)


def _read_manifest_files(file: Path) -> dict[str, str]:
    try:
        body = json.loads(file.read_text())
        files = body["files"]
        return {k: v for k, v in files.items() if _safe_relpath(k)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class CheckpointView:
    """The verified files of a checkpoint (or of one directory in it).

    Every read goes through here: a file the manifest does not list is missing, and a file
    whose bytes do not match their digest is corrupt (checked on each read).
    """

    def __init__(self, root: Path, files: dict[str, str | None], places: dict[str, Path]):
        self.root = root
        self.files = files  # relative path -> sha256 (None: an unverified legacy file)
        self._places = places  # relative path -> where its verified bytes are

    @property
    def path(self) -> Path:
        """The directory this view reads from."""
        return self.root

    def has(self, rel: str) -> bool:
        """Whether the manifest lists the file `rel` (a path relative to this view)."""
        return rel in self.files

    def top_level(self) -> list[str]:
        """The sorted names of the top-level files and directories that hold listed files."""
        return sorted({PurePosixPath(f).parts[0] for f in self.files})

    def children(self, rel_dir: str) -> list[str]:
        """Names directly under `rel_dir` that hold listed files."""
        prefix = rel_dir.rstrip("/") + "/"
        return sorted({f[len(prefix) :].split("/")[0] for f in self.files if f.startswith(prefix)})

    def sub(self, rel_dir: str) -> CheckpointView:
        """A view of the listed files under `rel_dir`, with paths relative to it."""
        prefix = rel_dir.rstrip("/") + "/"
        return CheckpointView(
            self.root / rel_dir,
            {f[len(prefix) :]: d for f, d in self.files.items() if f.startswith(prefix)},
            {f[len(prefix) :]: p for f, p in self._places.items() if f.startswith(prefix)},
        )

    def locate_entry(self, name: str) -> Path:
        """Where the verified copy of top-level entry `name` is: `root/name`, or, after an
        interrupted save, a staging directory's copy (for `recover`)."""
        rel = next(f for f in self.files if PurePosixPath(f).parts[0] == name)
        place = self._places[rel]
        depth = len(PurePosixPath(rel).parts) - 1
        for _ in range(depth):
            place = place.parent
        return place

    def read_bytes(self, rel: str, what: str) -> bytes:
        """The bytes of the listed file `rel`, checked against its recorded SHA-256.

        Args:
            rel: The file's path relative to this view.
            what: What the file holds, to start the error message with.

        Raises:
            CheckpointError: If the file is not listed, cannot be read, or its checksum differs.
        """
        if rel not in self.files:
            raise CheckpointError(f"{what}: `{self.root / rel}` is missing from the checkpoint.")
        try:
            data = self._places[rel].read_bytes()
        except OSError as e:
            raise CheckpointError(f"{what}: cannot read `{self.root / rel}` ({e}).") from None
        digest = self.files[rel]
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise CheckpointError(
                f"{what}: checkpoint file `{self.root / rel}` is corrupt: its checksum does "
                "not match the one recorded when it was saved."
            )
        return data

    def read_json(self, rel: str, what: str) -> dict:
        """The JSON object in the listed file `rel`, checked as `read_bytes` does.

        Raises:
            CheckpointError: If the file is missing or corrupt, or does not hold a JSON object.
        """
        try:
            data = json.loads(self.read_bytes(rel, what))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{what}: `{self.root / rel}` is corrupt ({e}).") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{what}: `{self.root / rel}` does not hold a JSON object.")
        return data

    def load_tensors(self, rel: str, what: str) -> dict[str, torch.Tensor]:
        """The torch tensors in the listed safetensors file `rel` (else CheckpointError)."""
        return self._safetensors(rel, what, load_torch_bytes)

    def load_arrays(self, rel: str, what: str) -> dict[str, np.ndarray]:
        """The numpy arrays in the listed safetensors file `rel` (else CheckpointError)."""
        return self._safetensors(rel, what, load_numpy_bytes)

    def _safetensors(self, rel: str, what: str, parse: Any) -> dict[str, Any]:
        data = self.read_bytes(rel, what)
        try:
            return parse(data)
        except (SafetensorError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"{what}: `{self.root / rel}` is not a tensor file ({e})."
            ) from None


def open_checkpoint(path: Any, kind: str, allow_unverified: bool = False) -> CheckpointView:
    """Check a checkpoint's manifest and every file it lists; return the verified view.

    Args:
        path: The checkpoint directory (a str, a Path, or `Algorithm.save()`'s result).
        kind: The kind expected ("Algorithm" or "RLModule"; "Checkpoint": any).
        allow_unverified: Load a checkpoint written before manifests (format 1), whose
            `algorithm_state.json` carries no checksum. Only for checkpoints you trust
            to be intact: they are still loaded without running or importing anything.

    Raises:
        CheckpointError: naming the file that is missing, corrupt, or points outside.
    """
    root = as_path(path)
    if not root.exists():
        raise CheckpointError(f"Checkpoint `{root}` does not exist.")
    if not root.is_dir():
        raise CheckpointError(f"Checkpoint `{root}` is a file; pass the checkpoint directory.")
    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        return _open_legacy(root, kind, allow_unverified)
    if not _is_plain_file(root, MANIFEST_FILE):
        raise CheckpointError(f"`{manifest}` is not a regular file.")
    try:
        body = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"`{manifest}` is corrupt ({e}).") from None
    if not (
        isinstance(body, dict)
        and body.get("format") == MANIFEST_FORMAT
        and isinstance(body.get("files"), dict)
        and isinstance(body.get("kind"), str)
        and body.get("manifest_sha256") == _digest_of(body)
    ):
        raise CheckpointError(
            f"`{manifest}` is corrupt or not a scalerl manifest (its own checksum does not match)."
        )
    if not isinstance(body.get("version"), int) or body["version"] > MANIFEST_VERSION:
        raise CheckpointError(
            f"`{root}` was written by a newer scalerl (format version {body.get('version')}); "
            "upgrade scalerl to load it."
        )
    if kind not in ("Checkpoint", body["kind"]):
        raise CheckpointError(
            f"`{root}` is an {body['kind']} checkpoint, not an {kind} checkpoint."
            + (
                " Load it with `RLModule.from_checkpoint(path)`."
                if body["kind"] == "RLModule"
                else ""
            )
        )
    files: dict[str, str | None] = {}
    for rel, digest in body["files"].items():
        if not _safe_relpath(rel) or not isinstance(digest, str):
            raise CheckpointError(
                f"`{manifest}` lists `{rel}`, which is not a plain path inside the checkpoint."
            )
        files[rel] = digest
    places = {rel: _find_verified(root, rel, digest) for rel, digest in files.items()}
    return CheckpointView(root, files, places)


def _find_verified(root: Path, rel: str, digest: str) -> Path:
    """The copy of `rel` whose bytes match `digest`: in the checkpoint itself or, after an
    interrupted save, in one of its staging directories."""
    candidates = [root]
    for staging in sorted(root.glob(STAGING_PREFIX + "*")):
        candidates += [staging, staging / SWAP_DIR]
    found = False
    for base in candidates:
        if _is_plain_file(base, rel):
            found = True
            if sha256_file(base / rel) == digest:
                return base / rel
    if os.path.lexists(root / rel) and not _is_plain_file(root, rel):
        raise CheckpointError(
            f"Checkpoint file `{root / rel}` is a symbolic link or not a regular file; "
            "checkpoints hold plain files only."
        )
    if not found:
        raise CheckpointError(f"Checkpoint file `{root / rel}` is missing.")
    raise CheckpointError(
        f"Checkpoint file `{root / rel}` is corrupt: its checksum does not match the one "
        "recorded when it was saved."
    )


def _open_legacy(root: Path, kind: str, allow_unverified: bool) -> CheckpointView:
    """Format 1 (before manifests): `algorithm_state.json` listed the other files' digests."""
    state_file = root / ALGO_FILE
    if allow_unverified and kind != "Algorithm" and (root / MODULE_FILE).is_file():
        names = [n for n in (MODULE_FILE, WEIGHTS_FILE) if _is_plain_file(root, n)]
        return CheckpointView(root, dict.fromkeys(names), {n: root / n for n in names})
    if not state_file.is_file() or kind == "RLModule":
        what = "an algorithm" if kind == "Algorithm" else "a scalerl"
        raise CheckpointError(
            f"`{root}` is not {what} checkpoint: `{root / MANIFEST_FILE}` is missing. Is it a "
            "directory written by `Algorithm.save()` or `RLModule.save_to_path()`?"
        )
    if not allow_unverified:
        raise CheckpointError(
            f"`{root}` has no manifest (`{MANIFEST_FILE}`): it was written by an older scalerl "
            f"whose `{ALGO_FILE}` carries no checksum, so it cannot be verified. If you trust "
            "it, load it with `Algorithm.from_checkpoint(path, allow_unverified=True)` (or "
            "`scalerl evaluate --allow-unverified`) and save it again to upgrade it."
        )
    listed = _legacy_files(root)
    if listed is None:
        raise CheckpointError(f"`{root}` is a corrupt format-1 checkpoint (a checksum fails).")
    files: dict[str, str | None] = {**listed, ALGO_FILE: None}
    return CheckpointView(root, files, {rel: root / rel for rel in files})


# RLlib's name, in RLlib's module (`ray.rllib.utils.checkpoints`).
from scalerl.utils.checkpoint_convert import convert_to_msgpack_checkpoint  # noqa: E402, F401
