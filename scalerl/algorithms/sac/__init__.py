"""Soft Actor-Critic, for Box and Discrete actions."""

from scalerl.algorithms.sac.sac import SAC, SACConfig

__all__ = ["SAC", "SACConfig"]
