"""RLModules (RLlib's `ray.rllib.core.rl_module`)."""

from scalerl.core.columns import Columns
from scalerl.core.rl_module.apis import ValueFunctionAPI
from scalerl.core.rl_module.default_model_config import DefaultModelConfig
from scalerl.core.rl_module.rl_module import RLModule, RLModuleSpec

__all__ = [
    "Columns",
    "DefaultModelConfig",
    "RLModule",
    "RLModuleSpec",
    "ValueFunctionAPI",
]
