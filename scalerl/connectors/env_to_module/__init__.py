"""Env-to-module connectors (RLlib's `ray.rllib.connectors.env_to_module`)."""

from scalerl.connectors.env_to_module.mean_std_filter import MeanStdFilter

__all__ = ["MeanStdFilter"]
