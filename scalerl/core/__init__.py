from scalerl.core.rl_module import Columns, RLModule, RLModuleSpec

DEFAULT_MODULE_ID = "default_policy"

__all__ = ["Columns", "DEFAULT_MODULE_ID", "RLModule", "RLModuleSpec"]
