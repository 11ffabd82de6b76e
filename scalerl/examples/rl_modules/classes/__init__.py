"""RLlib's `ray.rllib.examples.rl_modules.classes` path."""
