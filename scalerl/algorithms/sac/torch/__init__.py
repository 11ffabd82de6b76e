"""RLlib's `ray.rllib.algorithms.sac.torch` path (the default torch module)."""
