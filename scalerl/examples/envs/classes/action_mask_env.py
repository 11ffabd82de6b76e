"""RLlib's `ray.rllib.examples.envs.classes.action_mask_env` path: RLlib's `ActionMaskEnv`
(a RandomEnv with an action mask, configured by "action_space" and "observation_space";
scalerl's own `scalerl.examples.envs.ActionMaskEnv` is a different, learnable task)."""

from scalerl.examples.envs.random_action_mask_env import RandomActionMaskEnv

ActionMaskEnv = RandomActionMaskEnv

__all__ = ["ActionMaskEnv"]
