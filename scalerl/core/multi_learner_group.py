"""MultiLearnerGroup: one Learner per module of a multi-agent algorithm (in the driver).

Each module trains on its own batch with its own optimizer and its own config (the
algorithm's, with `algorithm_config_overrides_per_module` applied). Checkpoint layout, next
to the single-agent one so `RLModule.from_checkpoint(ckpt, module_id)` finds each module:

    learner_group/learner/rl_module/<module_id>/     rl_module.json, module_state.safetensors
    learner_group/learner/state/<module_id>/         optimizer.safetensors, learner_state.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scalerl.core.learner import Learner, read_learner_files
from scalerl.core.rl_module import RLModuleSpec
from scalerl.core.rl_module.multi_rl_module import MultiRLModule, MultiRLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError, ConfigError


class MultiLearnerGroup:
    """One local Learner per module id: the learner group of a multi-agent run.

    It offers `LearnerGroup`'s interface with weights keyed by module id, and trains only
    the modules in `policies_to_train`.

    Args:
        config: The algorithm config; each learner gets `get_config_for_module(id)`.
        learner_class: The algorithm's Learner class.
        module_spec: The spec of every module, keyed by module id.
        policies_to_train: Module ids to train; None trains all of them.
    """

    def __init__(
        self,
        config: Any,
        learner_class: type[Learner],
        module_spec: MultiRLModuleSpec,
        policies_to_train: list[str] | None = None,
    ):
        self.config = config
        self.learner_class = learner_class
        self.learners: dict[str, Learner] = {}
        self.policies_to_train: set[str] = set()
        for mid, spec in module_spec.rl_module_specs.items():
            self.add_module(mid, spec, train=policies_to_train is None or mid in policies_to_train)

    @property
    def module(self) -> MultiRLModule:
        """A MultiRLModule view of the learners' modules, keyed by module id."""
        return MultiRLModule({mid: lr.module for mid, lr in self.learners.items()})

    def add_module(self, module_id: str, spec: RLModuleSpec, train: bool = True) -> None:
        """Add a learner for a new module, trained if `train` (ConfigError if the id exists)."""
        if module_id in self.learners:
            raise ConfigError(f"A module `{module_id}` exists already; remove it first.")
        self.learners[module_id] = self.learner_class(
            self.config.get_config_for_module(module_id), spec
        )
        self.learners[module_id].module_id = module_id  # named in its errors
        if train:
            self.policies_to_train.add(module_id)

    def remove_module(self, module_id: str) -> None:
        """Drop the learner of `module_id` (KeyError if unknown) and stop training it."""
        self.module[module_id]  # a clear KeyError for an unknown id
        del self.learners[module_id]
        self.policies_to_train.discard(module_id)

    # -- training ---------------------------------------------------------------------------
    def update(self, batches: dict[str, Any], timestep: int) -> dict[str, dict[str, float]]:
        """Update every trainable module that has data; {module_id: metrics}."""
        return {
            mid: self.learners[mid].update(batch, timestep)
            for mid, batch in batches.items()
            if mid in self.policies_to_train and mid in self.learners
        }

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self, module_ids: Any = None) -> dict[str, dict[str, np.ndarray]]:
        """Module id -> that module's weights as numpy arrays, for `module_ids` (default: all)."""
        ids = self.learners if module_ids is None else module_ids
        return {mid: self.learners[mid].get_weights() for mid in ids}

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        """Load weights given as module id -> state dict into the matching learners."""
        for mid, w in weights.items():
            self.learners[mid].set_weights(w)

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write each module's learner state under `directory / "learner"` (state per module id)."""
        for mid, learner in self.learners.items():
            ckpt.check_module_id(mid)
            learner.save(
                directory / "learner", mid, state_dir=directory / "learner" / "state" / mid
            )

    def load(self, view: ckpt.CheckpointView, module_ids: Any = None) -> None:
        """Restore all modules, or only `module_ids` (the others keep their weights), from
        the verified `learner_group` directory `view` of a checkpoint."""
        learner_view = view.sub("learner")
        stored = learner_view.children("rl_module")
        for mid in self.learners if module_ids is None else module_ids:
            if mid not in self.learners:
                raise CheckpointError(f"This algorithm has no module `{mid}` to restore.")
            if mid not in stored:
                raise CheckpointError(
                    f"The checkpoint has no module `{mid}` (looked in "
                    f"`{learner_view.path / 'rl_module' / mid}`); it has {stored}."
                )
            learner = self.learners[mid]
            files = read_learner_files(learner_view, mid, learner.module, f"state/{mid}")
            learner.set_state(*files)

    def stop(self) -> None:
        """Local learners hold no resources beyond memory."""
