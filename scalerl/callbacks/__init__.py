"""Callbacks and custom metrics (RLlib's `ray.rllib.callbacks`)."""

from scalerl.callbacks.callbacks import (
    DRIVER_EVENTS,
    NOT_YET_EVENTS,
    Callbacks,
    DefaultCallbacks,
    RLlibCallback,
)
from scalerl.callbacks.metrics_logger import MetricsLogger

__all__ = [
    "DRIVER_EVENTS",
    "NOT_YET_EVENTS",
    "Callbacks",
    "DefaultCallbacks",
    "MetricsLogger",
    "RLlibCallback",
]
