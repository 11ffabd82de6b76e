"""Algorithm checkpoints: what `Algorithm.save_to_path`, `restore_from_path` and
`from_checkpoint` do (JSON + safetensors under one checksummed manifest, written
crash-safely; nothing is unpickled or imported). Functions of the algorithm's public
state, called from those methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scalerl.env.registry import env_name
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError
from scalerl.utils.run_logger import default_results_dir
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


def save_algorithm(algo: Any, path: str | Path | None = None) -> str:
    """Write a checkpoint of `algo` to directory `path` (default: in its run directory,
    `algo.logdir`, else under `$SCALERL_RESULTS_DIR`); return its path. See
    `Algorithm.save_to_path`."""
    if path is None:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        run = f"{type(algo).__name__}_{env_name(algo.config.env)}_{stamp}".replace("/", "_")
        run_dir = Path(algo.logdir) if algo.logdir else default_results_dir() / run
        path = run_dir / f"checkpoint_{algo.iteration:06d}"
    target = ckpt.as_path(path)
    with ckpt.write_checkpoint(target, "Algorithm") as tmp:
        algo.learner_group.save(tmp / "learner_group")
        if algo.obs_filter is not None:
            ckpt.write_json(tmp / OBS_FILTER_FILE, algo.obs_filter.get_state())
        ckpt.write_json(tmp / ENV_RUNNER_STATE_FILE, algo.get_env_runner_state())
        algo.save_extra_state(tmp)
        ckpt.write_json(
            tmp / ckpt.ALGO_FILE,
            {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "algo_class": type(algo).__name__,
                "config": algo.config.to_dict(mapping_table=algo.agent_to_module),
                "counters": {
                    "training_iteration": algo.iteration,
                    "num_env_steps_sampled_lifetime": algo.num_env_steps_sampled_lifetime,
                    "num_episodes_lifetime": algo.num_episodes_lifetime,
                    "time_total_s": algo.time_total_s,
                },
                "episode_stats": algo.episode_stats.get_state(),
                "agent_returns": algo.agent_returns.get_state(),
                "module_returns": algo.module_returns.get_state(),
            },
        )
    return str(target)


def restore_algorithm(
    algo: Any, path: Any, module_ids: list[str] | None = None, allow_unverified: bool = False
) -> None:
    """Load a checkpoint of this algorithm's class into `algo` (see
    `Algorithm.restore_from_path`)."""
    view, state = read_algorithm_state(path, allow_unverified)
    if state["algo_class"] != type(algo).__name__:
        raise CheckpointError(
            f"`{view.path}` is a {state['algo_class']} checkpoint; it cannot be "
            f"restored into {type(algo).__name__}."
        )
    learners = view.sub("learner_group")
    if module_ids is not None:
        if not algo.config.is_multi_agent:
            raise CheckpointError("`module_ids` applies to multi-agent algorithms only.")
        algo.learner_group.load(learners, module_ids)
        algo.env_runner_group.sync_weights(algo.runner_weights())
        return
    algo.learner_group.load(learners)
    counters = state["counters"]
    algo.iteration = counters["training_iteration"]
    algo.num_env_steps_sampled_lifetime = counters["num_env_steps_sampled_lifetime"]
    algo.num_episodes_lifetime = counters["num_episodes_lifetime"]
    algo.time_total_s = counters["time_total_s"]
    try:
        algo.episode_stats.set_state(state["episode_stats"])
        algo.agent_returns.set_state(state.get("agent_returns", []))
        algo.module_returns.set_state(state.get("module_returns", []))
    except (KeyError, TypeError, ValueError) as e:
        bad = view.path / ckpt.ALGO_FILE
        raise CheckpointError(f"`{bad}` holds corrupt metrics ({e}).") from None
    _restore_obs_filter(algo, view)
    algo.set_env_runner_state(view, ENV_RUNNER_STATE_FILE)
    algo.restore_extra_state(view)
    algo.env_runner_group.sync_weights(algo.runner_weights())


def _restore_obs_filter(algo: Any, view: ckpt.CheckpointView) -> None:
    """Load the filter statistics; checkpoints written without a filter have no file
    (the statistics then start fresh)."""
    if algo.obs_filter is None or not view.has(OBS_FILTER_FILE):
        return
    state = view.read_json(OBS_FILTER_FILE, "Observation filter")
    try:
        algo.obs_filter.set_state(state)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"`{view.path / OBS_FILTER_FILE}` does not fit this algorithm's observation "
            f"filter: {e}."
        ) from None


def build_from_checkpoint(
    path: Any,
    config_overrides: dict | None = None,
    trusted: tuple | list = (),
    allow_unverified: bool = False,
) -> Any:
    """Build the algorithm stored in `path` and restore it (see
    `Algorithm.from_checkpoint`)."""
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
