"""A2C: synchronous advantage actor-critic (Mnih et al. 2016), one step per batch."""

from scalerl.algorithms.a2c.a2c import A2C, A2CConfig

__all__ = ["A2C", "A2CConfig"]
