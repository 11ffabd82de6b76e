"""The run directory every `Algorithm.train()` loop writes (RLlib's `algo.logdir`).

Contents, one row or line per iteration:

- `params.json`, `params.yaml`: the config (`config.to_dict()`), written when it opens;
- `progress.csv`: the result's scalars (numbers, bools, strings) flattened as `a/b/c`;
  when a later iteration brings a new key (e.g. `evaluation/...` on the first evaluation)
  the file is rewritten with the wider header, earlier rows leaving the new cells empty;
- `result.json`: the whole result, one JSON object a line (numpy values as Python's,
  NaN and inf as `null`: every line is strict JSON);
- `events.out.tfevents.*`: TensorBoard scalars (x = env steps sampled), written with
  tensorboardX or `torch.utils.tensorboard` when one of them is installed (the
  `tensorboard` extra); without them there are no event files, and one log line says so.

Where: `logger_config["logdir"]` if set (that directory itself), else
`$SCALERL_RESULTS_DIR` (default `~/scalerl_results`) / `<Algo>_<env>_<date>_<time>`. An
existing non-empty directory is never reused: the name gets `_1`, `_2`, ... instead.
`logger_config={"type": None}` writes nothing. The directory is created at the first
`train()`; files are flushed every iteration and closed by `algo.stop()`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import socket
import struct
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from scalerl.utils.errors import ConfigError, did_you_mean

logger = logging.getLogger(__name__)

RESULTS_DIR_ENV = "SCALERL_RESULTS_DIR"
PARAMS_JSON, PARAMS_YAML = "params.json", "params.yaml"
PROGRESS_CSV, RESULT_JSON = "progress.csv", "result.json"
LOGGER_CONFIG_KEYS = ("type", "logdir")
# `logger_config["type"]`: RLlib/Tune logger names (with or without `ray.tune.logger.`).
LOGGER_TYPES = {None: False, "NoopLogger": False, "UnifiedLogger": True}
STEP_KEY = "num_env_steps_sampled_lifetime"  # TensorBoard's x axis
_warned_no_tensorboard = False


def default_results_dir() -> Path:
    """`$SCALERL_RESULTS_DIR`, else `~/scalerl_results`: the parent of run directories
    (and of checkpoints saved without a path)."""
    env = os.environ.get(RESULTS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / "scalerl_results"


def check_logger_config(value: Any) -> None:
    """ConfigError unless `value` is a valid `logger_config`: None (the default run
    directory) or a dict with `logdir` (a path) and/or `type` (None or "NoopLogger":
    write nothing; "UnifiedLogger": the default)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"`logger_config` must be None or a dict such as {{'logdir': '/path/to/run'}} or "
            f"{{'type': None}} (no run directory), got {value!r}."
        )
    for key in value:
        if key not in LOGGER_CONFIG_KEYS:
            hint = did_you_mean(str(key), LOGGER_CONFIG_KEYS)
            raise ConfigError(
                f"`logger_config` has unknown key `{key}`.{hint}"
                f" Valid keys: {', '.join(LOGGER_CONFIG_KEYS)}."
            )
    _logger_type(value.get("type", "UnifiedLogger"))
    logdir = value.get("logdir")
    if logdir is not None and not isinstance(logdir, str | os.PathLike):
        raise ConfigError(f"`logger_config['logdir']` must be a path, got {logdir!r}.")


def _logger_type(kind: Any) -> bool:
    """Whether logger type `kind` writes a run directory."""
    name = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else kind
    if name not in LOGGER_TYPES:
        valid = ", ".join(repr(k) for k in LOGGER_TYPES)
        raise ConfigError(
            f"`logger_config['type']` must be one of {valid} (by name), got {kind!r}: "
            "scalerl writes JSON, CSV and TensorBoard files itself."
        )
    return LOGGER_TYPES[name]


def json_safe(value: Any) -> Any:
    """`value` as strict-JSON data: numpy and torch values as Python's, tuples as lists,
    NaN and inf as None, anything else unknown as its `str()`."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        return json_safe(value.tolist())
    return str(value)


def flatten(result: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with `a/b/c` keys."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


def unique_dir(path: Path) -> Path:
    """Create and return `path`, or `path_1`, `path_2`, ... if it exists and is not empty."""
    candidate, n = path, 0
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            if candidate.is_dir() and not any(candidate.iterdir()):
                return candidate
        n += 1
        candidate = path.with_name(f"{path.name}_{n}")


class RunLogger:
    """Writes one algorithm's run directory (see the module docstring).

    Args:
        logger_config: The config's `logger_config` (None: the default directory).
        run_name: The default directory's name before its date, e.g. "PPO_CartPole-v1".
    """

    def __init__(self, logger_config: Mapping | None, run_name: str):
        settings = dict(logger_config or {})
        self.enabled = _logger_type(settings.get("type", "UnifiedLogger"))
        self.requested = settings.get("logdir")
        self.run_name = run_name.replace("/", "_").replace(os.sep, "_")
        self.logdir: Path | None = None
        self.columns: list[str] = []
        self._tb: _TensorBoard | None = None

    def log(self, result: Mapping, params: Callable[[], dict]) -> None:
        """Append one iteration's `result`; the first call creates the directory and
        writes `params()` (the config's `to_dict()`)."""
        if not self.enabled:
            return
        if self.logdir is None:
            self._open(params)
        assert self.logdir is not None
        safe = json_safe(result)
        with open(self.logdir / RESULT_JSON, "a") as f:
            f.write(json.dumps(safe) + "\n")
        row = {k: v for k, v in flatten(safe).items() if not isinstance(v, list)}
        self._append_csv(row)
        if self._tb is not None:
            step = row.get(STEP_KEY) or row.get("training_iteration") or 0
            numbers = {
                k: float(v)
                for k, v in row.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            self._tb.add_scalars(numbers, int(step))

    def close(self) -> None:
        """Close the TensorBoard writer (the other files are closed after every write)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _open(self, params: Callable[[], dict]) -> None:
        if self.requested is not None:
            path = Path(self.requested).expanduser()
        else:
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            path = default_results_dir() / f"{self.run_name}_{stamp}"
        self.logdir = unique_dir(path.absolute())
        config = json_safe(_params_or_repr(params))
        (self.logdir / PARAMS_JSON).write_text(json.dumps(config, indent=2, sort_keys=True))
        (self.logdir / PARAMS_YAML).write_text(yaml.safe_dump(config, sort_keys=True))
        self._tb = _tensorboard_writer(self.logdir)
        logger.info("Writing results to %s", self.logdir)

    def _append_csv(self, row: dict[str, Any]) -> None:
        path = self.logdir / PROGRESS_CSV  # type: ignore[operator]
        new = [k for k in row if k not in self.columns]
        if new:
            old_rows = []
            if path.exists():
                with open(path, newline="") as f:
                    old_rows = list(csv.DictReader(f))
            self.columns += new
            tmp = path.with_name(f".{PROGRESS_CSV}.tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(old_rows)
            os.replace(tmp, path)  # a reader never sees a half-written header
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(
                {k: "nan" if v is None else v for k, v in row.items()}
            )


def _params_or_repr(params: Callable[[], dict]) -> Any:
    """The config as `to_dict()` gives it; if a setting cannot be stored, the error."""
    try:
        return params()
    except Exception as e:  # informational only: never stop training for it
        logger.warning("Could not store the config in params.json: %s", e)
        return {"error": f"the config could not be stored: {e}"}


class _TensorBoard:
    """TensorBoard scalars, one event per iteration holding all of them.

    With tensorboardX's protos the events are framed as TFRecords here and flushed to the
    OS every iteration: no writer thread or queue, and no fsync per iteration (its
    writer's flush costs ~3 ms). torch's SummaryWriter (which needs the `tensorboard`
    package) is the fallback.
    """

    def __init__(self, logdir: Path):
        try:
            from tensorboardX.proto.event_pb2 import Event
            from tensorboardX.proto.summary_pb2 import Summary
            from tensorboardX.record_writer import masked_crc32c

            self.crc, self.writer = masked_crc32c, None
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            self.file: Any = open(logdir / name, "ab")
            self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        except ImportError:
            from tensorboard.compat.proto.event_pb2 import Event  # type: ignore
            from tensorboard.compat.proto.summary_pb2 import Summary  # type: ignore
            from torch.utils.tensorboard import SummaryWriter

            self.file, self.writer = None, SummaryWriter(str(logdir))
        self.event_class, self.summary_class = Event, Summary

    def _write(self, event: Any) -> None:
        """One TFRecord: length, its masked CRC32C, the Event bytes, their masked CRC32C."""
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        crc = self.crc
        self.file.write(
            header + struct.pack("<I", crc(header)) + data + struct.pack("<I", crc(data))
        )
        self.file.flush()

    def add_scalars(self, scalars: dict[str, float], step: int) -> None:
        """Write `scalars` (tag -> value) at x = `step`, and flush."""
        value = [self.summary_class.Value(tag=k, simple_value=v) for k, v in scalars.items()]
        summary = self.summary_class(value=value)
        if self.file is not None:
            self._write(self.event_class(wall_time=time.time(), step=step, summary=summary))
        else:
            self.writer._get_file_writer().add_summary(summary, step)
            self.writer.flush()

    def close(self) -> None:
        """Close the event file."""
        (self.file or self.writer).close()


def _tensorboard_writer(logdir: Path) -> _TensorBoard | None:
    """A TensorBoard writer (tensorboardX, else torch's with the `tensorboard` package),
    else None and one log line."""
    global _warned_no_tensorboard
    try:
        return _TensorBoard(logdir)
    except ImportError:
        if not _warned_no_tensorboard:
            _warned_no_tensorboard = True
            logger.warning(
                "No TensorBoard event files: install tensorboardX "
                "(pip install 'scalerl[tensorboard]'); progress.csv and result.json "
                "are written."
            )
        return None
