"""RLlib's `ray.rllib.examples.envs.classes.stateless_cartpole` path."""

from scalerl.examples.envs.stateless_cartpole import StatelessCartPole

__all__ = ["StatelessCartPole"]
