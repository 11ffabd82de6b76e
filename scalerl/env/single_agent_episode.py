"""RLlib's `ray.rllib.env.single_agent_episode` path of the episode objects that callbacks
get (`scalerl/callbacks/episode.py`)."""

from scalerl.callbacks.episode import SingleAgentEpisode

__all__ = ["SingleAgentEpisode"]
