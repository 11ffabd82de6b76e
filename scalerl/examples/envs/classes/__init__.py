"""RLlib's `ray.rllib.examples.envs.classes` path for the example envs scalerl has; an
example env scalerl lacks fails to import with an error naming it."""
