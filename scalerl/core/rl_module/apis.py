"""Optional APIs an RLModule implements for algorithms that need more than actions
(RLlib's `ray.rllib.core.rl_module.apis`)."""

from __future__ import annotations

import abc
from typing import Any

import torch


class ValueFunctionAPI(abc.ABC):
    """A module with a state-value head V(s), as PPO needs for GAE and its value loss.

    Mix into a module class: `class MyModule(RLModule, ValueFunctionAPI)`.
    """

    @abc.abstractmethod
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """V(s) for a batch.

        Args:
            batch: At least `Columns.OBS`, a [B, ...] tensor (nested like the observation
                space for Dict/Tuple spaces).
            embeddings: Features the module already computed for this batch in its
                forward pass, if it passes them on; None means compute from the batch.

        Returns:
            A [B] float tensor.
        """
