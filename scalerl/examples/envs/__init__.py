"""Small Gymnasium environments for tests, learning tests and benchmarks."""

from scalerl.examples.envs.action_mask_env import ActionMaskEnv
from scalerl.examples.envs.correlated_actions_env import CorrelatedActionsEnv
from scalerl.examples.envs.image_env import ImageTargetEnv
from scalerl.examples.envs.space_test_env import SpaceTestEnv
from scalerl.examples.envs.stateless_cartpole import StatelessCartPole

__all__ = [
    "ActionMaskEnv",
    "CorrelatedActionsEnv",
    "ImageTargetEnv",
    "SpaceTestEnv",
    "StatelessCartPole",
]
