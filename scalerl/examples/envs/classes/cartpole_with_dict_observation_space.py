"""RLlib's `ray.rllib.examples.envs.classes.cartpole_with_dict_observation_space` path."""

from scalerl.examples.envs.cartpole_dict_obs import CartPoleWithDictObservationSpace

__all__ = ["CartPoleWithDictObservationSpace"]
