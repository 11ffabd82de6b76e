"""RLlib's `ray.rllib.algorithms.ppo.torch.ppo_torch_rl_module` path (`PPOTorchRLModule`,
RLlib's older name of the default PPO module)."""

from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule

PPOTorchRLModule = DefaultPPOTorchRLModule

__all__ = ["PPOTorchRLModule"]
