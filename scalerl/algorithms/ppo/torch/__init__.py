"""RLlib's `ray.rllib.algorithms.ppo.torch` path (the default torch module)."""
