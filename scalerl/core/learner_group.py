"""LearnerGroup: the Learner(s) that update the module(s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scalerl.core.learner import Learner
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils.errors import ConfigError


class LearnerGroup:
    """One local Learner in the driver process."""

    def __init__(self, config: Any, learner_class: type[Learner], module_spec: RLModuleSpec):
        if config.num_learners > 0:
            raise ConfigError(
                f"`num_learners={config.num_learners}`: remote (Ray) learners are not available "
                "yet; use `config.learners(num_learners=0)` (one learner in the driver, on the "
                "GPU when `num_gpus_per_learner=1`)."
            )
        self.learner = learner_class(config, module_spec)

    @property
    def module(self) -> RLModule:
        return self.learner.module

    def update(self, batch: Any, timestep: int) -> dict[str, float]:
        return self.learner.update(batch, timestep)

    def get_weights(self) -> dict[str, np.ndarray]:
        return self.learner.get_weights()

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.learner.set_weights(weights)

    def save(self, directory: Path, module_id: str) -> None:
        self.learner.save(directory / "learner", module_id)

    def load(self, directory: Path, module_id: str) -> None:
        self.learner.load(directory / "learner", module_id)
