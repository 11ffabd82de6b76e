"""Wrappers that adapt other environment APIs to scalerl's."""

from scalerl.env.wrappers.pettingzoo_env import ParallelPettingZooEnv, PettingZooEnv

__all__ = ["ParallelPettingZooEnv", "PettingZooEnv"]
