"""R2D2: recurrent DQN on replayed sequences with stored state and burn-in."""

from scalerl.algorithms.r2d2.r2d2 import R2D2, R2D2Config

__all__ = ["R2D2", "R2D2Config"]
