"""Example RLModules (custom networks and action distributions) for examples and tests."""

from scalerl.examples.rl_modules.autoregressive import (
    AutoregressiveActionsModule,
    TwoStepCategorical,
)
from scalerl.examples.rl_modules.random_rl_module import RandomRLModule

__all__ = ["AutoregressiveActionsModule", "RandomRLModule", "TwoStepCategorical"]
