"""Deep Q-learning: DQN with the Rainbow parts."""

from scalerl.algorithms.dqn.dqn import DQN, DQNConfig

__all__ = ["DQN", "DQNConfig"]
