"""scalerl: reinforcement learning with RLlib's API, much faster."""

from scalerl.env.registry import register_env

__version__ = "0.1.0"

__all__ = ["register_env", "__version__"]
