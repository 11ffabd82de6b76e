"""RLlib's `ray.rllib.examples.envs.classes.correlated_actions_env` path."""

from scalerl.examples.envs.correlated_actions_env import CorrelatedActionsEnv

__all__ = ["CorrelatedActionsEnv"]
