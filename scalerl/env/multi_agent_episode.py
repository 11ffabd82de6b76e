"""RLlib's `ray.rllib.env.multi_agent_episode` path of the episode objects that callbacks
get (`scalerl/callbacks/episode.py`)."""

from scalerl.callbacks.episode import MultiAgentEpisode

__all__ = ["MultiAgentEpisode"]
