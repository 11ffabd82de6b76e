"""RLlib's `ray.rllib.examples.envs.classes.cartpole_crashing` path."""

from scalerl.examples.envs.cartpole_crashing import CartPoleCrashing

__all__ = ["CartPoleCrashing"]
