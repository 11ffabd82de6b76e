"""Callback classes for tests/integration/test_callbacks.py, in a module that Ray actors can
import by name (`tests.integration.callback_classes`)."""

from __future__ import annotations

from scalerl.callbacks import RLlibCallback, SingleAgentEpisode
from scalerl.env.registry import EnvContext

EVENTS: list[tuple[str, dict]] = []


class EpisodeRecorder(RLlibCallback):
    """Records the EnvRunner events (local mode) and logs metrics from them, as RLlib's
    custom-metrics example does: the pole angle of each step kept as temporary data in
    `on_episode_step`, its maximum logged in `on_episode_end`."""

    def on_environment_created(self, *, env_runner, metrics_logger, env, env_context, **kw):
        EVENTS.append(("on_environment_created", dict(kw, runner=env_runner, env=env)))
        assert isinstance(env_context, EnvContext) and metrics_logger is env_runner.metrics

    def on_episode_created(self, *, episode, env_index, **kw):
        assert len(episode.get_observations()) == 0
        EVENTS.append(("on_episode_created", dict(kw, episode=episode, env_index=env_index)))

    def on_episode_start(self, *, episode, env_index, **kw):
        assert len(episode.get_observations()) == 1 and len(episode) == 0
        EVENTS.append(("on_episode_start", dict(kw, episode=episode, env_index=env_index)))

    def on_episode_step(self, *, episode, env_index, **kw):
        episode.add_temporary_timestep_data("pole_angle", abs(episode.get_observations(-1)[2]))
        EVENTS.append(("on_episode_step", dict(kw, episode=episode, env_index=env_index)))

    def on_episode_end(self, *, episode, env_index, metrics_logger, **kw):
        angles = episode.get_temporary_timestep_data("pole_angle")
        assert angles == [abs(o[2]) for o in episode.get_observations(slice(1, None))]
        assert episode.is_done and len(angles) == len(episode) == episode.env_steps()
        metrics_logger.log_value("max_pole_angle", max(angles), reduce="max")
        metrics_logger.log_value("episode_len_cb", len(episode))
        metrics_logger.log_value("return_cb", episode.get_return())
        metrics_logger.log_value("episodes_cb", 1, reduce="sum")
        EVENTS.append(("on_episode_end", dict(kw, episode=episode, env_index=env_index)))

    def on_sample_end(self, *, env_runner, metrics_logger, samples, **kw):
        assert all(isinstance(e, SingleAgentEpisode) for e in samples)
        metrics_logger.log_value("samples_cb", 1, reduce="sum", clear_on_reduce=True)
        EVENTS.append(("on_sample_end", {"samples": samples}))
