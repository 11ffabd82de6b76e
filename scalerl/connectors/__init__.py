"""Connectors between envs and modules (RLlib's `ray.rllib.connectors`)."""
