"""Vanilla policy gradient: REINFORCE with a learned baseline."""

from scalerl.algorithms.pg.pg import PG, PGConfig

__all__ = ["PG", "PGConfig"]
