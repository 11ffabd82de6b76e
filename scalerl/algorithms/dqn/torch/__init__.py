"""RLlib's `ray.rllib.algorithms.dqn.torch` path (the default torch module)."""
