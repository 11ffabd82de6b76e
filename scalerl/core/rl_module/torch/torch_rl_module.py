"""RLlib's `ray.rllib.core.rl_module.torch.torch_rl_module`: `TorchRLModule` is scalerl's
`RLModule` under RLlib's name (every scalerl module is a `torch.nn.Module`)."""

from scalerl.core.rl_module.rl_module import RLModule

TorchRLModule = RLModule

__all__ = ["TorchRLModule"]
