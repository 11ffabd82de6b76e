"""RLlib's `ray.rllib.examples.envs.classes.multi_agent.tic_tac_toe` path."""

from scalerl.examples.envs.tic_tac_toe import TicTacToe

__all__ = ["TicTacToe"]
