"""RLlib's `ray.rllib.examples.rl_modules.classes.action_masking_rlm` path: scalerl's
default PPO module masks the logits of an observation `Dict(action_mask=...,
observations=...)` itself, so RLlib's example class is that module."""

from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule

ActionMaskingTorchRLModule = DefaultPPOTorchRLModule

__all__ = ["ActionMaskingTorchRLModule"]
