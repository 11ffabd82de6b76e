"""scalerl: reinforcement learning with RLlib's API, much faster."""

from scalerl.env.registry import register_env
from scalerl.utils.trust import register_trusted
from scalerl.utils.unsupported import install_finder

__version__ = "0.1.0"

install_finder()  # RLlib paths scalerl lacks fail with an error naming the feature

__all__ = ["register_env", "register_trusted", "__version__"]
