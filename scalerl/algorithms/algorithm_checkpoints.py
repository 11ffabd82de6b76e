"""Algorithm checkpoints: save, restore, from_checkpoint (JSON + safetensors, checksummed,
written atomically; nothing is unpickled)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scalerl.core import DEFAULT_MODULE_ID
from scalerl.env.registry import env_name
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError

CHECKPOINT_FORMAT = "scalerl-algorithm"
CHECKPOINT_VERSION = 1
OBS_FILTER_FILE = "observation_filter.json"
ENV_RUNNER_STATE_FILE = "env_runner_state.json"  # sampling RNGs: resume where it left off


@dataclass
class Checkpoint:
    """Where a checkpoint lives (RLlib/Ray Train's `Checkpoint`)."""

    path: str

    def __fspath__(self) -> str:
        return self.path


@dataclass
class SaveResult:
    """What `Algorithm.save()` returns: `.checkpoint.path` is the checkpoint directory."""

    checkpoint: Checkpoint
    metrics: dict = field(default_factory=dict)

    def __fspath__(self) -> str:
        return self.checkpoint.path


class AlgorithmCheckpoints:
    """The checkpoint half of `Algorithm` (a mixin: it uses the algorithm's attributes)."""

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, checkpoint_dir: str | Path | None = None) -> SaveResult:
        """Write a checkpoint (default: ~/scalerl_results/...); returns `.checkpoint.path`."""
        path = self.save_to_path(checkpoint_dir)
        return SaveResult(Checkpoint(path), {"training_iteration": self.iteration})

    def save_to_path(self, path: str | Path | None = None) -> str:
        if path is None:
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            run = f"{type(self).__name__}_{env_name(self.config.env)}_{stamp}"
            path = (
                Path.home()
                / "scalerl_results"
                / run.replace("/", "_")
                / (f"checkpoint_{self.iteration:06d}")
            )
        target = ckpt.as_path(path)
        with ckpt.atomic_dir(target) as tmp:
            if self.config.is_multi_agent:
                self.learner_group.save(tmp / "learner_group")
            else:
                self.learner_group.save(tmp / "learner_group", DEFAULT_MODULE_ID)
            if self.obs_filter is not None:
                ckpt.write_json(tmp / OBS_FILTER_FILE, self.obs_filter.get_state())
            ckpt.write_json(tmp / ENV_RUNNER_STATE_FILE, self.get_env_runner_state())
            self.save_extra_state(tmp)
            files = {
                str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()
            }
            ckpt.write_json(
                tmp / ckpt.ALGO_FILE,
                {
                    "format": CHECKPOINT_FORMAT,
                    "version": CHECKPOINT_VERSION,
                    "algo_class": type(self).__name__,
                    "config": self.config.to_dict(mapping_table=self.agent_to_module),
                    "counters": {
                        "training_iteration": self.iteration,
                        "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                        "num_episodes_lifetime": self.num_episodes_lifetime,
                        "time_total_s": self.time_total_s,
                    },
                    "episode_stats": self.episode_stats.get_state(),
                    "agent_returns": self.agent_returns.get_state(),
                    "module_returns": self.module_returns.get_state(),
                    "files": files,
                },
            )
        return str(target)

    def restore_from_path(self, path: Any, module_ids: list[str] | None = None) -> None:
        """Load weights, optimizer state and counters from a checkpoint of this algorithm.

        `module_ids` (multi-agent): restore only those modules' weights and optimizer
        state, e.g. a trained opponent into a new league; counters stay as they are.
        """
        path = ckpt.as_path(path)
        state = read_algorithm_state(path)
        if state["algo_class"] != type(self).__name__:
            raise CheckpointError(
                f"`{path}` is a {state['algo_class']} checkpoint; it cannot be "
                f"restored into {type(self).__name__}."
            )
        if module_ids is not None:
            if not self.config.is_multi_agent:
                raise CheckpointError("`module_ids` applies to multi-agent algorithms only.")
            self.learner_group.load(path / "learner_group", module_ids)
            self.env_runner_group.sync_weights(self.learner_group.get_weights())
            return
        if self.config.is_multi_agent:
            self.learner_group.load(path / "learner_group")
        else:
            self.learner_group.load(path / "learner_group", DEFAULT_MODULE_ID)
        counters = state["counters"]
        self.iteration = counters["training_iteration"]
        self.num_env_steps_sampled_lifetime = counters["num_env_steps_sampled_lifetime"]
        self.num_episodes_lifetime = counters["num_episodes_lifetime"]
        self.time_total_s = counters["time_total_s"]
        self.episode_stats.set_state(state["episode_stats"])
        self.agent_returns.set_state(state.get("agent_returns", []))
        self.module_returns.set_state(state.get("module_returns", []))
        self._restore_obs_filter(path / OBS_FILTER_FILE)
        self.set_env_runner_state(path / ENV_RUNNER_STATE_FILE)
        self.restore_extra_state(path)
        self.env_runner_group.sync_weights(self.learner_group.get_weights())

    def save_extra_state(self, directory: Path) -> None:
        """Write what a subclass keeps beyond learner, filter and counters (e.g. a replay
        buffer) into the checkpoint being written; its files get checksums too."""

    def restore_extra_state(self, directory: Path) -> None:
        """Read back what `save_extra_state` wrote (checksums are already verified)."""

    def _restore_obs_filter(self, file: Path) -> None:
        """Load the filter statistics; checkpoints written without a filter have no file
        (the statistics then start fresh)."""
        if self.obs_filter is None or not file.exists():
            return
        state = ckpt.read_json(file, "Observation filter")
        try:
            self.obs_filter.set_state(state)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"`{file}` does not fit this algorithm's observation filter: {e}."
            ) from None

    def restore(self, checkpoint_path: Any) -> None:
        self.restore_from_path(checkpoint_path)

    @classmethod
    def from_checkpoint(cls, path: Any, config_overrides: dict | None = None) -> Any:
        """Build the algorithm stored in `path` (a str, a Path, or `save()`'s result).

        `config_overrides` changes settings before building, e.g. `{"num_env_runners": 0}`
        to evaluate a checkpoint trained on Ray without starting Ray.
        """
        from scalerl.algorithms.registry import get_algorithm_class

        path = ckpt.as_path(path)
        state = read_algorithm_state(path)
        algo_cls = get_algorithm_class(state["algo_class"])
        config = algo_cls.config_class.from_dict(state["config"])
        config.update_from_dict(config_overrides or {})
        algo = config.build_algo()
        algo.restore_from_path(path)
        return algo


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_algorithm_state(path: Path) -> dict:
    """Read and check `algorithm_state.json`, and verify every file's checksum."""
    if not path.exists():
        raise CheckpointError(f"Checkpoint `{path}` does not exist.")
    state = ckpt.read_json(path / ckpt.ALGO_FILE, "Algorithm checkpoint")
    counters = (
        "training_iteration",
        "num_env_steps_sampled_lifetime",
        "num_episodes_lifetime",
        "time_total_s",
    )
    if (
        not isinstance(state, dict)
        or state.get("format") != CHECKPOINT_FORMAT
        or not all(k in state for k in ("algo_class", "config", "counters", "episode_stats"))
        or not isinstance(state["counters"], dict)
        or not all(k in state["counters"] for k in counters)
    ):
        raise CheckpointError(
            f"`{path / ckpt.ALGO_FILE}` is not a valid scalerl algorithm "
            "checkpoint state (wrong format or missing entries)."
        )
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"`{path}` was written by a newer scalerl (format version "
            f"{state['version']}); upgrade scalerl to load it."
        )
    for name, digest in state.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"Checkpoint file `{file}` is missing.")
        if _sha256(file) != digest:
            raise CheckpointError(
                f"Checkpoint file `{file}` is corrupt: its checksum does not "
                "match the one recorded when it was saved."
            )
    return state
