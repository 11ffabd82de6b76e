"""Callbacks and custom metrics (RLlib's `ray.rllib.callbacks`)."""

from scalerl.callbacks.callbacks import (
    ALL_EVENTS,
    DRIVER_EVENTS,
    ENV_RUNNER_EVENTS,
    Callbacks,
    DefaultCallbacks,
    RLlibCallback,
)
from scalerl.callbacks.episode import MultiAgentEpisode, SingleAgentEpisode
from scalerl.callbacks.metrics_logger import MetricsLogger

__all__ = [
    "ALL_EVENTS",
    "DRIVER_EVENTS",
    "ENV_RUNNER_EVENTS",
    "Callbacks",
    "DefaultCallbacks",
    "MetricsLogger",
    "MultiAgentEpisode",
    "RLlibCallback",
    "SingleAgentEpisode",
]
