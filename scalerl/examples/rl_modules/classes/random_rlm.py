"""RLlib's `ray.rllib.examples.rl_modules.classes.random_rlm` path."""

from scalerl.examples.rl_modules.random_rl_module import RandomRLModule

__all__ = ["RandomRLModule"]
