"""RLlib's `ray.rllib.core.rl_module.torch` path: scalerl's RLModule is a torch module."""

from scalerl.core.rl_module.torch.torch_rl_module import TorchRLModule

__all__ = ["TorchRLModule"]
