"""EnvRunnerGroup: a local EnvRunner, or Ray actors that share weights via the object store."""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.connectors.env_to_module.mean_std_filter import (
    MeanStdFilter,
    build_observation_filter,
)
from scalerl.core.rl_module import RLModuleSpec
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.utils.errors import ConfigError


def init_ray_if_needed() -> None:
    """Start Ray only when actors are needed, and reuse a running instance."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)


class EnvRunnerGroup:
    """Local sampling when `num_env_runners == 0`, else that many Ray actors.

    `sync_weights` puts the weights into the object store once; every actor fetches them.

    With an observation filter, `obs_filter` is the central one: the local runner's own
    filter in local mode; with Ray actors a driver-side copy into which `sample()` merges
    every runner's new statistics, and which `sync_weights` sends back with the weights.
    """

    def __init__(
        self,
        config: Any,
        env_creator: Any,
        module_spec: RLModuleSpec,
        num_env_runners: int,
        runner_class: type[SingleAgentEnvRunner] = SingleAgentEnvRunner,
    ):
        self.config = config
        self.local_runner: SingleAgentEnvRunner | None = None
        self.remote_runners: list = []
        self.obs_filter: MeanStdFilter | None = None
        if num_env_runners == 0:
            self.local_runner = runner_class(config, env_creator, module_spec)
            self.obs_filter = self.local_runner.obs_filter
            return
        self.obs_filter = build_observation_filter(
            config.observation_filter, module_spec.observation_space
        )
        init_ray_if_needed()
        import ray

        need = num_env_runners * config.num_cpus_per_env_runner
        have = ray.available_resources().get("CPU", 0.0)
        if need > have:
            raise ConfigError(
                f"{num_env_runners} EnvRunners x `num_cpus_per_env_runner="
                f"{config.num_cpus_per_env_runner}` need {need:g} CPUs, but Ray has {have:g} "
                "free. Lower `num_env_runners` (or `evaluation_num_env_runners`), request "
                "fractional CPUs, e.g. `num_cpus_per_env_runner=0.5`, or start Ray with more "
                "`num_cpus`."
            )
        actor_cls = ray.remote(runner_class).options(
            num_cpus=config.num_cpus_per_env_runner, max_restarts=0
        )
        self.remote_runners = [
            actor_cls.remote(config, env_creator, module_spec, i + 1, num_env_runners)
            for i in range(num_env_runners)
        ]

    @property
    def num_runners(self) -> int:
        return len(self.remote_runners)

    def sync_weights(
        self, weights: dict[str, np.ndarray], obs_filter: MeanStdFilter | None = None
    ) -> None:
        """Send the weights (and the central filter statistics) to every runner.

        Args:
            weights: The module state from the learner.
            obs_filter: Another group's central filter to adopt first (evaluation runners
                filter with the training runners' statistics).
        """
        own = self.obs_filter
        if obs_filter is not None and own is not None and obs_filter is not own:
            own.set_state(obs_filter.get_state())
        if self.local_runner is not None:
            self.local_runner.set_weights(weights)  # its filter is `self.obs_filter`
            return
        import ray

        ref = ray.put(weights)
        filter_ref = None if self.obs_filter is None else ray.put(self.obs_filter.get_state())
        # Actor calls run in order, so the next sample() sees these weights; no need to wait.
        for runner in self.remote_runners:
            runner.set_weights.remote(ref, filter_ref)

    def sample(self) -> list[tuple[dict, dict]]:
        """One rollout fragment from every runner: a list of (batch, metrics)."""
        if self.local_runner is not None:
            return [self.local_runner.sample()]
        refs = [r.sample.remote() for r in self.remote_runners]
        if self.obs_filter is None:
            return self._get(refs)
        # Queued behind each sample(), so one round trip brings both back.
        deltas = [r.pop_obs_filter_delta.remote() for r in self.remote_runners]
        results = self._get(refs + deltas)
        self.obs_filter.merge_states(results[len(refs) :])
        return results[: len(refs)]

    def sample_episodes(
        self, num_episodes: int | None, num_timesteps: int | None, explore: bool
    ) -> list[dict]:
        """Evaluation-style sampling, the work split evenly over the runners."""
        if self.local_runner is not None:
            return [self.local_runner.sample_episodes(num_episodes, num_timesteps, explore)]
        n = len(self.remote_runners)

        def split(x: int | None, i: int) -> int | None:
            return None if x is None else x // n + (i < x % n)

        return self._get(
            [
                r.sample_episodes.remote(split(num_episodes, i), split(num_timesteps, i), explore)
                for i, r in enumerate(self.remote_runners)
            ]
        )

    def call(self, method: str, *args: Any) -> list:
        """Call `method(*args)` on every runner (and wait); returns their results."""
        if self.local_runner is not None:
            return [getattr(self.local_runner, method)(*args)]
        return self._get([getattr(r, method).remote(*args) for r in self.remote_runners])

    def _get(self, refs: list) -> list:
        import ray

        timeout = self.config.sample_timeout_s
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(
                f"EnvRunners did not return a sample within `sample_timeout_s={timeout}`. Raise "
                "`config.env_runners(sample_timeout_s=...)` or lower `rollout_fragment_length`."
            ) from None

    def stop(self) -> None:
        if self.local_runner is not None:
            self.local_runner.stop()
            self.local_runner = None
        if self.remote_runners:
            import ray

            for runner in self.remote_runners:
                ray.kill(runner)
            self.remote_runners = []
