"""Small Gymnasium environments for tests, learning tests and benchmarks."""

from scalerl.examples.envs.action_mask_env import ActionMaskEnv
from scalerl.examples.envs.cartpole_crashing import CartPoleCrashing
from scalerl.examples.envs.correlated_actions_env import CorrelatedActionsEnv
from scalerl.examples.envs.image_env import ImageTargetEnv
from scalerl.examples.envs.mixed_agents_env import MixedAgentsEnv
from scalerl.examples.envs.multi_agent_arena import MultiAgentArena
from scalerl.examples.envs.multi_agent_cartpole import MultiAgentCartPole
from scalerl.examples.envs.random_env import RandomEnv
from scalerl.examples.envs.simple_corridor import SimpleCorridor
from scalerl.examples.envs.space_test_env import SpaceTestEnv
from scalerl.examples.envs.stateless_cartpole import StatelessCartPole
from scalerl.examples.envs.tic_tac_toe import TicTacToe

__all__ = [
    "ActionMaskEnv",
    "CartPoleCrashing",
    "CorrelatedActionsEnv",
    "ImageTargetEnv",
    "MixedAgentsEnv",
    "MultiAgentArena",
    "MultiAgentCartPole",
    "RandomEnv",
    "SimpleCorridor",
    "SpaceTestEnv",
    "StatelessCartPole",
    "TicTacToe",
]
