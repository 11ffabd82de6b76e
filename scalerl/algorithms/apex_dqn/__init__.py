"""Ape-X DQN: distributed prioritized replay (Horgan et al. 2018) on Ray actors."""

from scalerl.algorithms.apex_dqn.apex_dqn import APEXDQN, APEXDQNConfig

__all__ = ["APEXDQN", "APEXDQNConfig"]
