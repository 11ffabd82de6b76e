"""RLlib's `ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module` path."""

from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule

__all__ = ["DefaultPPOTorchRLModule"]
