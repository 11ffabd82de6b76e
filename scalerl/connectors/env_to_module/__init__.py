"""Env-to-module connectors (RLlib's `ray.rllib.connectors.env_to_module`)."""

from scalerl.connectors.env_to_module.flatten_observations import FlattenObservations
from scalerl.connectors.env_to_module.mean_std_filter import MeanStdFilter
from scalerl.connectors.env_to_module.observation_preprocessor import (
    MultiAgentObservationPreprocessor,
    SingleAgentObservationPreprocessor,
)
from scalerl.utils.unsupported import missing_names

__getattr__ = missing_names(
    __name__,
    {
        name: f"the `{name}` env-to-module connector"
        for name in (
            "AddObservationsFromEpisodesToBatch",
            "AddStatesFromEpisodesToBatch",
            "AddTimeDimToBatchAndZeroPad",
            "AgentToModuleMapping",
            "BatchIndividualItems",
            "EnvToModulePipeline",
            "FrameStackingEnvToModule",
            "NumpyToTensor",
            "PrevActionsPrevRewards",
            "WriteObservationsToEpisodes",
        )
    },
)

__all__ = [
    "FlattenObservations",
    "MeanStdFilter",
    "MultiAgentObservationPreprocessor",
    "SingleAgentObservationPreprocessor",
]
