"""RLlib's older import path for the callbacks (`ray.rllib.algorithms.callbacks`)."""

from scalerl.callbacks.callbacks import DefaultCallbacks, RLlibCallback

__all__ = ["DefaultCallbacks", "RLlibCallback"]
