"""scalerl: reinforcement learning with RLlib's API, much faster."""

from scalerl.env.registry import register_env
from scalerl.utils.trust import register_trusted

__version__ = "0.1.0"

__all__ = ["register_env", "register_trusted", "__version__"]
