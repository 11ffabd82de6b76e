"""RLlib's `ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module` path."""

from scalerl.algorithms.dqn.default_dqn_rl_module import DefaultDQNTorchRLModule

__all__ = ["DefaultDQNTorchRLModule"]
