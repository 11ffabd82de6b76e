"""RLlib's `ray.rllib.examples.envs.classes.action_mask_env` path."""

from scalerl.examples.envs.action_mask_env import ActionMaskEnv

__all__ = ["ActionMaskEnv"]
