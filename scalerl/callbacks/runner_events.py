"""An EnvRunner's side of the callbacks: its episode objects and the EnvRunner events.

A runner holds an `EpisodeEvents` only when an EnvRunner event is configured
(`env_runner_callbacks(config)` is not None); its sampling loop then calls
`create(i)` before resetting env i, `start(i, ...)` after, `step(i, ...)` after each step
(which ends the episode when it is done) and `discard(i)` for an episode scalerl cuts
short; `sample_end()` at the end of each `sample()`. Without one the runner calls none of
these and keeps no per-step objects.
"""

from __future__ import annotations

from typing import Any

from scalerl.callbacks.callbacks import ENV_RUNNER_EVENTS, Callbacks, env_runner_callbacks
from scalerl.callbacks.episode import MultiAgentEpisode, SingleAgentEpisode
from scalerl.env.registry import EnvContext


class EnvsView:
    """What the callbacks get as `env`: the runner's sub-envs (RLlib passes its vector env,
    whose `envs[env_index]` is the episode's env)."""

    def __init__(self, envs: list):
        self.envs = envs

    @property
    def num_envs(self) -> int:
        """The number of sub-envs."""
        return len(self.envs)

    @property
    def unwrapped(self) -> EnvsView:
        """This view (RLlib's callbacks get `vector_env.unwrapped`)."""
        return self

    def __len__(self) -> int:
        return len(self.envs)


class EpisodeEvents:
    """The episodes of one runner's envs and the calls of the EnvRunner events.

    Args:
        runner: The EnvRunner (`env_runner` in the events; its `metrics`, `module` and
            `envs` are the `metrics_logger`, `rl_module` and `env.envs`).
        callbacks: The runner's own `Callbacks`.
        multi_agent: Build `MultiAgentEpisode`s.
    """

    def __init__(self, runner: Any, callbacks: Callbacks, multi_agent: bool = False):
        self.runner = runner
        self.callbacks = callbacks
        # Events nobody handles are not called (on_episode_step runs for every env step).
        self.handled = {e for e in ENV_RUNNER_EVENTS if callbacks.handles(e)}
        self.episode_class = MultiAgentEpisode if multi_agent else SingleAgentEpisode
        self.env = EnvsView(runner.envs)
        self.episodes: list[Any] = [None] * len(runner.envs)
        self.done: list[Any] = []  # ended since the last `sample_end()`

    def _call(self, event: str, i: int) -> None:
        if event not in self.handled:
            return
        r = self.runner
        self.callbacks.call(
            event,
            episode=self.episodes[i],
            env_runner=r,
            metrics_logger=r.metrics,
            env=self.env,
            env_index=i,
            rl_module=r.module,
        )

    def environment_created(self, env_context: Any) -> None:
        """`on_environment_created`, once the runner's envs exist."""
        r = self.runner
        self.env.envs = r.envs
        self.callbacks.call(
            "on_environment_created",
            env_runner=r,
            metrics_logger=r.metrics,
            env=self.env,
            env_context=env_context,
        )

    def create(self, i: int) -> None:
        """A new episode for env i (before its reset); one still running there is dropped."""
        self.episodes[i] = self.episode_class()
        self._call("on_episode_created", i)

    def start(self, i: int, observation: Any, infos: Any, agent_to_module: dict | None = None):
        """The reset's observation(s) and info(s); `on_episode_start`."""
        episode = self.episodes[i]
        if episode is None:  # reset outside the runner's usual paths
            self.create(i)
            episode = self.episodes[i]
        if agent_to_module is not None:
            episode.agent_to_module_map = agent_to_module
        episode.add_env_reset(observation, infos if isinstance(infos, dict) else {})
        self._call("on_episode_start", i)

    def step(self, i: int, *data: Any, **flags: Any) -> None:
        """One step of env i's episode (`add_env_step(*data, **flags)`): `on_episode_step`,
        then `on_episode_end` if the episode is done."""
        episode = self.episodes[i]
        if episode is None:
            return
        episode.add_env_step(*data, **flags)
        self._call("on_episode_step", i)
        if episode.is_done:
            self._call("on_episode_end", i)
            self.done.append(episode)
            self.episodes[i] = None

    def discard(self, i: int) -> None:
        """Drop env i's episode without `on_episode_end` (scalerl cut it short)."""
        self.episodes[i] = None

    def discard_all(self) -> None:
        """Drop every running episode (the runner starts fresh ones)."""
        self.episodes = [None] * len(self.episodes)

    def sample_end(self) -> None:
        """`on_sample_end` with the episodes that ended since the last call, then the
        ones still running."""
        r = self.runner
        samples = self.done + [e for e in self.episodes if e is not None]
        self.done = []
        self.callbacks.call(
            "on_sample_end", env_runner=r, metrics_logger=r.metrics, samples=samples
        )


def make_episode_events(
    runner: Any, config: Any, worker_index: int, num_workers: int, multi_agent: bool = False
) -> EpisodeEvents | None:
    """The runner's EnvRunner events, or None when none is configured (then the runner
    builds no episode objects); calls `on_environment_created` for its envs."""
    callbacks = env_runner_callbacks(config)
    if callbacks is None:
        return None
    events = EpisodeEvents(runner, callbacks, multi_agent)
    events.environment_created(EnvContext(config.env_config, worker_index, 0, num_workers))
    return events


def with_logged_metrics(runner: Any, metrics: dict) -> dict:
    """`on_sample_end`, then what the runner's callbacks logged (`MetricsLogger.export`,
    merged in the driver into `result["env_runners"]`) into a sample's `metrics`."""
    if runner.events is not None:
        runner.events.sample_end()
        metrics["metrics_logger"] = runner.metrics.export()
    return metrics
