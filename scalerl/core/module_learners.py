"""ModuleLearners: the Learners of one process, one per module id.

A learner process (the driver with `num_learners=0`, or one data-parallel Ray actor) trains
every module of the algorithm: each module has its own Learner (its module, optimizer(s)
and the module's config, the algorithm's with `algorithm_config_overrides_per_module`
applied). A single-agent run is the case of one module, `default_policy`.

Checkpoint layout (`save`), for every module id:

    learner/rl_module/<module_id>/    rl_module.json, module_state.safetensors
    learner/state/<module_id>/        optimizer.safetensors, learner_state.json

Checkpoints written before this layout kept a single-agent learner's state files directly
in `learner/`; `load` still reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerl.core.learner import Learner, read_learner_files
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError, ConfigError


def module_weights(module: RLModule, inference_only: bool = False) -> dict[str, np.ndarray]:
    """`module`'s weights as numpy copies; with `inference_only`, only what acting needs
    (a module with a `get_policy_state()`, e.g. SAC's, leaves its critics out)."""
    if inference_only and hasattr(module, "get_policy_state"):
        return module.get_policy_state()
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


class ModuleLearners:
    """One Learner per module id, built from the algorithm's config and learner class.

    Args:
        config: The algorithm config; module `m`'s learner gets `get_config_for_module(m)`.
        learner_class: The algorithm's Learner class.
        adapt_config: Applied to each module's config copy before its learner is built
            (data-parallel learners take their share of the minibatch), or None.
    """

    def __init__(
        self,
        config: Any,
        learner_class: type[Learner],
        adapt_config: Callable[[Any], Any] | None = None,
    ):
        self.config = config
        self.learner_class = learner_class
        self.adapt_config = adapt_config
        self.learners: dict[str, Learner] = {}

    def add(self, module_id: str, spec: RLModuleSpec) -> Learner:
        """Build the learner of a new module (ConfigError if the id exists)."""
        if module_id in self.learners:
            raise ConfigError(f"A module `{module_id}` exists already; remove it first.")
        config = self.config.get_config_for_module(module_id)
        if self.adapt_config is not None:
            config = self.adapt_config(config.copy())
        learner = self.learner_class(config, spec)
        learner.module_id = module_id  # named in its errors
        self.learners[module_id] = learner
        return learner

    def remove(self, module_id: str) -> None:
        """Drop the learner of `module_id`."""
        del self.learners[module_id]

    def update(
        self, batches: dict[str, Any], timestep: int, steps: dict[str, int | None] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Update each module in `batches` on its batch; {module_id: metrics}.

        Modules are updated in the order of `batches` (data-parallel learners must run
        their all-reduces in the same order); `steps` fixes a module's minibatches per
        epoch (see `Learner.minibatch_bounds`).
        """
        out = {}
        for mid, batch in batches.items():
            learner = self.learners[mid]
            learner.fixed_steps_per_epoch = (steps or {}).get(mid)
            out[mid] = learner.update(batch, timestep)
        return out

    def get_weights(
        self, module_ids: Iterable[str] | None = None, inference_only: bool = False
    ) -> dict[str, dict[str, np.ndarray]]:
        """Module id -> weights (numpy copies) for `module_ids` (default: all)."""
        ids = self.learners if module_ids is None else module_ids
        return {mid: module_weights(self.learners[mid].module, inference_only) for mid in ids}

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        """Load weights given as module id -> state dict into the matching learners."""
        for mid, w in weights.items():
            self.learners[mid].set_weights(w)

    def get_state(self, module_id: str) -> dict[str, Any]:
        """A module's optimizer tensors and JSON learner state, as `save` writes them."""
        learner = self.learners[module_id]
        return {
            "optimizer_tensors": {k: v.detach().cpu() for k, v in learner.state_tensors().items()},
            "learner_state": {
                "optimizer": learner.optimizer_hyperparameters(),
                "extra": learner.get_extra_state(),
            },
        }

    def set_state(self, module_id: str, weights: dict, tensors: dict, learner_state: dict) -> None:
        """Restore a module's weights, optimizer tensors and learner state."""
        self.learners[module_id].set_state(weights, tensors, learner_state)

    def foreach(self, fn: Callable[[Learner], Any]) -> dict[str, Any]:
        """`fn(learner)` for every module's learner; {module_id: result}."""
        return {mid: fn(learner) for mid, learner in self.learners.items()}


def save_module_state(
    directory: Path, module_id: str, module: RLModule, state: dict[str, Any]
) -> None:
    """Write one module's weights and learner `state` (`ModuleLearners.get_state`) in the
    checkpoint layout under `directory` (the checkpoint's `learner_group/learner`)."""
    ckpt.check_module_id(module_id)
    module._write(directory / "rl_module" / module_id)
    state_dir = directory / "state" / module_id
    ckpt.save_tensors(state_dir / "optimizer.safetensors", state["optimizer_tensors"])
    ckpt.write_json(state_dir / "learner_state.json", state["learner_state"])


def read_module_state(
    view: ckpt.CheckpointView, module_id: str, module: RLModule
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """Read one module's files from the verified `learner_group/learner` view (checking the
    weights fit `module`): (weights, optimizer tensors, learner state)."""
    stored = view.children("rl_module")
    if module_id not in stored:
        raise CheckpointError(
            f"The checkpoint has no module `{module_id}` (looked in "
            f"`{view.path / 'rl_module' / module_id}`); it has {stored}."
        )
    state_dir = f"state/{module_id}"
    if not view.has(f"{state_dir}/learner_state.json") and view.has("learner_state.json"):
        state_dir = ""  # a single-agent checkpoint from before the per-module layout
    return read_learner_files(view, module_id, module, state_dir)
