"""Algorithm checkpoints: save, restore, from_checkpoint (JSON + safetensors under one
checksummed manifest, written crash-safely; nothing is unpickled or imported)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scalerl.env.registry import env_name
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError
from scalerl.utils.trust import register_trusted

CHECKPOINT_FORMAT = "scalerl-algorithm"
CHECKPOINT_VERSION = 2  # 2: the file digests moved to the manifest
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
        """Write a checkpoint to directory `path` and return its path.

        Files in `path` that the previous checkpoint there did not write are kept; until
        the new checkpoint is complete the old one stays loadable (see `utils.checkpoints`).
        """
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
        with ckpt.write_checkpoint(target, "Algorithm") as tmp:
            self.learner_group.save(tmp / "learner_group")
            if self.obs_filter is not None:
                ckpt.write_json(tmp / OBS_FILTER_FILE, self.obs_filter.get_state())
            ckpt.write_json(tmp / ENV_RUNNER_STATE_FILE, self.get_env_runner_state())
            self.save_extra_state(tmp)
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
                },
            )
        return str(target)

    def restore_from_path(
        self, path: Any, module_ids: list[str] | None = None, *, allow_unverified: bool = False
    ) -> None:
        """Load weights, optimizer state and counters from a checkpoint of this algorithm.

        `module_ids` (multi-agent): restore only those modules' weights and optimizer
        state, e.g. a trained opponent into a new league; counters stay as they are.
        `allow_unverified`: accept a checkpoint written before manifests (see
        `utils.checkpoints.open_checkpoint`).
        """
        view, state = read_algorithm_state(path, allow_unverified)
        if state["algo_class"] != type(self).__name__:
            raise CheckpointError(
                f"`{view.path}` is a {state['algo_class']} checkpoint; it cannot be "
                f"restored into {type(self).__name__}."
            )
        learners = view.sub("learner_group")
        if module_ids is not None:
            if not self.config.is_multi_agent:
                raise CheckpointError("`module_ids` applies to multi-agent algorithms only.")
            self.learner_group.load(learners, module_ids)
            self.env_runner_group.sync_weights(self.runner_weights())
            return
        self.learner_group.load(learners)
        counters = state["counters"]
        self.iteration = counters["training_iteration"]
        self.num_env_steps_sampled_lifetime = counters["num_env_steps_sampled_lifetime"]
        self.num_episodes_lifetime = counters["num_episodes_lifetime"]
        self.time_total_s = counters["time_total_s"]
        try:
            self.episode_stats.set_state(state["episode_stats"])
            self.agent_returns.set_state(state.get("agent_returns", []))
            self.module_returns.set_state(state.get("module_returns", []))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"`{view.path / ckpt.ALGO_FILE}` holds corrupt metrics ({e})."
            ) from None
        self._restore_obs_filter(view)
        self.set_env_runner_state(view, ENV_RUNNER_STATE_FILE)
        self.restore_extra_state(view)
        self.env_runner_group.sync_weights(self.runner_weights())

    def save_extra_state(self, directory: Path) -> None:
        """Write what a subclass keeps beyond learner, filter and counters (e.g. a replay
        buffer) into the checkpoint being written; its files get checksums too."""

    def restore_extra_state(self, view: ckpt.CheckpointView) -> None:
        """Read back what `save_extra_state` wrote, through the checkpoint's verified view
        (only files its manifest lists, each checked against its digest)."""

    def _restore_obs_filter(self, view: ckpt.CheckpointView) -> None:
        """Load the filter statistics; checkpoints written without a filter have no file
        (the statistics then start fresh)."""
        if self.obs_filter is None or not view.has(OBS_FILTER_FILE):
            return
        state = view.read_json(OBS_FILTER_FILE, "Observation filter")
        try:
            self.obs_filter.set_state(state)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"`{view.path / OBS_FILTER_FILE}` does not fit this algorithm's observation "
                f"filter: {e}."
            ) from None

    def restore(self, checkpoint_path: Any) -> None:
        """Restore from a checkpoint directory: RLlib's older name for `restore_from_path`."""
        self.restore_from_path(checkpoint_path)

    @classmethod
    def from_checkpoint(
        cls,
        path: Any,
        config_overrides: dict | None = None,
        *,
        trusted: tuple | list = (),
        allow_unverified: bool = False,
    ) -> Any:
        """Build the algorithm stored in `path` (a str, a Path, or `save()`'s result).

        Args:
            path: The checkpoint directory.
            config_overrides: Settings to change before building, e.g.
                `{"num_env_runners": 0}` to evaluate a checkpoint trained on Ray without
                starting Ray, or `{"env": MyEnv}` to give the env yourself.
            trusted: Classes and functions the checkpoint may name (a custom env or
                RLModule class, a policy mapping function); scalerl's own, and those
                registered with `scalerl.register_trusted` or `register_env`, need no
                listing. Nothing else is imported or called.
            allow_unverified: Load a checkpoint written before manifests (older scalerl),
                which cannot be verified. Only for checkpoints you trust to be intact.
        """
        from scalerl.algorithms.registry import get_algorithm_class

        register_trusted(*trusted)
        view, state = read_algorithm_state(path, allow_unverified)
        algo_cls = get_algorithm_class(state["algo_class"])
        overrides = dict(config_overrides or {})
        stored = {k: v for k, v in state["config"].items() if k not in overrides}
        config = algo_cls.config_class.from_dict(stored, trusted)
        config.update_from_dict(overrides)
        algo = config.build_algo()
        algo.restore_from_path(view.path, allow_unverified=allow_unverified)
        return algo


def read_algorithm_state(
    path: Any, allow_unverified: bool = False
) -> tuple[ckpt.CheckpointView, dict]:
    """Verify a checkpoint (every file against the manifest) and read its
    `algorithm_state.json`; returns (the verified view, the state)."""
    view = ckpt.open_checkpoint(path, "Algorithm", allow_unverified)
    state = view.read_json(ckpt.ALGO_FILE, "Algorithm checkpoint")
    counters = (
        "training_iteration",
        "num_env_steps_sampled_lifetime",
        "num_episodes_lifetime",
        "time_total_s",
    )
    if (
        state.get("format") != CHECKPOINT_FORMAT
        or not all(k in state for k in ("algo_class", "config", "counters", "episode_stats"))
        or not isinstance(state["config"], dict)
        or not isinstance(state["algo_class"], str)
        or not isinstance(state["counters"], dict)
        or not all(isinstance(state["counters"].get(k), int | float) for k in counters)
    ):
        raise CheckpointError(
            f"`{view.path / ckpt.ALGO_FILE}` is not a valid scalerl algorithm "
            "checkpoint state (wrong format or missing entries)."
        )
    if not isinstance(state.get("version", 0), int) or state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"`{view.path}` was written by a newer scalerl (format version "
            f"{state['version']}); upgrade scalerl to load it."
        )
    return view, state
