"""RLlib's `ray.rllib.examples.envs.classes.random_env` path."""

from scalerl.examples.envs.random_env import RandomEnv

__all__ = ["RandomEnv"]
