"""Example RLModules (custom networks and action distributions) for examples and tests."""

from scalerl.examples.rl_modules.autoregressive import (
    AutoregressiveActionsModule,
    TwoStepCategorical,
)

__all__ = ["AutoregressiveActionsModule", "TwoStepCategorical"]
