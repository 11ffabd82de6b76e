"""RLlib's observation-preprocessor base classes (`ray.rllib.connectors.env_to_module.
observation_preprocessor`): a connector piece that maps one observation to a new one.

Subclass `SingleAgentObservationPreprocessor` and implement `preprocess(observation,
episode)` (and `recompute_output_observation_space` if the space changes). scalerl runs
the built-in `FlattenObservations` and `MeanStdFilter` in its env-to-module path; a custom
preprocessor in `env_to_module_connector` is not supported yet (a ConfigError says so),
but the class can be applied to an env with `as_env_wrapper(env)`.
"""

from __future__ import annotations

import abc
from typing import Any

import gymnasium as gym


class SingleAgentObservationPreprocessor(abc.ABC):
    """Maps each single-agent observation to a new one (RLlib's API).

    Args:
        input_observation_space: The space of the observations it gets (set later by the
            pipeline if None).
        input_action_space: The action space (unused by most preprocessors).
        **kwargs: Settings of a subclass.
    """

    def __init__(
        self,
        input_observation_space: gym.Space | None = None,
        input_action_space: gym.Space | None = None,
        **kwargs: Any,
    ):
        self.input_observation_space = input_observation_space
        self.input_action_space = input_action_space
        self.observation_space = (
            None
            if input_observation_space is None
            else self.recompute_output_observation_space(
                input_observation_space, input_action_space
            )
        )

    def recompute_output_observation_space(
        self, input_observation_space: gym.Space, input_action_space: gym.Space | None
    ) -> gym.Space:
        """The space of the preprocessed observations (default: unchanged)."""
        return input_observation_space

    @abc.abstractmethod
    def preprocess(self, observation: Any, episode: Any = None) -> Any:
        """The new observation for `observation` (one agent, not batched)."""

    def as_env_wrapper(self, env: gym.Env) -> gym.Env:
        """`env` with its observations preprocessed by this piece (a Gymnasium wrapper)."""
        return _PreprocessedEnv(env, self)


# RLlib's multi-agent variant maps the whole multi-agent observation dict.
class MultiAgentObservationPreprocessor(SingleAgentObservationPreprocessor):
    """RLlib's multi-agent preprocessor base: `preprocess(observations, episode)` gets the
    dict of all agents' observations."""


class _PreprocessedEnv(gym.ObservationWrapper):
    """A Gymnasium env whose observations go through a preprocessor."""

    def __init__(self, env: gym.Env, piece: SingleAgentObservationPreprocessor):
        super().__init__(env)
        self.piece = piece
        self.observation_space = piece.recompute_output_observation_space(
            env.observation_space, env.action_space
        )
        piece.observation_space = self.observation_space

    def observation(self, observation: Any) -> Any:
        """The preprocessed observation."""
        return self.piece.preprocess(observation, None)
