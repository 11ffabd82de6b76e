"""RLlib's `ray.rllib.examples.envs.classes.simple_corridor` path."""

from scalerl.examples.envs.simple_corridor import SimpleCorridor

__all__ = ["SimpleCorridor"]
