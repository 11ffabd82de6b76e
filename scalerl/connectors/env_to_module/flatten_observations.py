"""FlattenObservations (RLlib's `ray.rllib.connectors.env_to_module.FlattenObservations`):
observations as one flat float vector, Discrete parts one-hot, Dict keys in sorted order.

In `config.env_runners(env_to_module_connector=lambda env: FlattenObservations())` with a
default module it changes nothing: scalerl's default modules already one-hot and flatten
every part of a Tuple/Dict observation and concatenate them (`core/models/observations.py`),
which is this flattening. With a custom RLModule, with `keys_to_remove`, or with image
parts (which the default modules send through a CNN) it is refused with a ConfigError.
Called directly (`preprocess`, `recompute_output_observation_space`) it flattens.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.connectors.env_to_module.observation_preprocessor import (
    SingleAgentObservationPreprocessor,
)


class FlattenObservations(SingleAgentObservationPreprocessor):
    """Flattens (nested) observations into a 1D float32 vector.

    Args:
        input_observation_space: The observation space (set later if None).
        input_action_space: The action space (unused).
        multi_agent: RLlib's flag for multi-agent pipelines (each agent's observation is
            flattened on its own; accepted).
        agent_ids: The agents whose observations to flatten (None: all).
        as_learner_connector: RLlib's learner-pipeline flag (accepted, no meaning here).
        keys_to_remove: Top-level Dict keys to drop before flattening.
        **kwargs: Accepted for RLlib compatibility.
    """

    def __init__(
        self,
        input_observation_space: gym.Space | None = None,
        input_action_space: gym.Space | None = None,
        *,
        multi_agent: bool = False,
        agent_ids: Collection[Any] | None = None,
        as_learner_connector: bool = False,
        keys_to_remove: list[str] | None = None,
        **kwargs: Any,
    ):
        self.multi_agent = multi_agent
        self.agent_ids = None if agent_ids is None else set(agent_ids)
        self.keys_to_remove = list(keys_to_remove or [])
        super().__init__(input_observation_space, input_action_space)

    def _kept_space(self, space: gym.Space) -> gym.Space:
        if self.keys_to_remove and isinstance(space, gym.spaces.Dict):
            return gym.spaces.Dict(
                {k: s for k, s in space.spaces.items() if k not in self.keys_to_remove}
            )
        return space

    def recompute_output_observation_space(
        self, input_observation_space: gym.Space, input_action_space: gym.Space | None = None
    ) -> gym.Space:
        """A float32 Box of the flattened size (Discrete parts one-hot)."""
        flat = gym.spaces.flatten_space(self._kept_space(input_observation_space))
        low, high = flat.low.astype(np.float32), flat.high.astype(np.float32)
        return gym.spaces.Box(low, high, flat.shape, np.float32)

    def preprocess(self, observation: Any, episode: Any = None) -> np.ndarray:
        """`observation` flattened into a float32 vector (Dict keys sorted)."""
        space = self.input_observation_space
        if space is None:
            raise ValueError("FlattenObservations needs `input_observation_space` to flatten.")
        if self.keys_to_remove and isinstance(observation, dict):
            observation = {k: v for k, v in observation.items() if k not in self.keys_to_remove}
        flat = gym.spaces.flatten(self._kept_space(space), observation)
        return np.asarray(flat, dtype=np.float32)
