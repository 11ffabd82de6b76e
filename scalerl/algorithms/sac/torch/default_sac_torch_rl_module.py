"""RLlib's `ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module` path."""

from scalerl.algorithms.sac.default_sac_rl_module import DefaultSACTorchRLModule

__all__ = ["DefaultSACTorchRLModule"]
