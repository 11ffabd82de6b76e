"""EnvRunnerGroup: a local EnvRunner, or Ray actors that share weights via the object store."""

from __future__ import annotations

from typing import Any

import numpy as np

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
    """

    def __init__(
        self,
        config: Any,
        env_creator: Any,
        module_spec: RLModuleSpec,
        num_env_runners: int,
    ):
        self.config = config
        self.local_runner: SingleAgentEnvRunner | None = None
        self.remote_runners: list = []
        if num_env_runners == 0:
            self.local_runner = SingleAgentEnvRunner(config, env_creator, module_spec)
            return
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
        actor_cls = ray.remote(SingleAgentEnvRunner).options(
            num_cpus=config.num_cpus_per_env_runner, max_restarts=0
        )
        self.remote_runners = [
            actor_cls.remote(config, env_creator, module_spec, i + 1, num_env_runners)
            for i in range(num_env_runners)
        ]

    @property
    def num_runners(self) -> int:
        return len(self.remote_runners)

    def sync_weights(self, weights: dict[str, np.ndarray]) -> None:
        if self.local_runner is not None:
            self.local_runner.set_weights(weights)
            return
        import ray

        ref = ray.put(weights)
        # Actor calls run in order, so the next sample() sees these weights; no need to wait.
        for runner in self.remote_runners:
            runner.set_weights.remote(ref)

    def sample(self) -> list[tuple[dict, dict]]:
        """One rollout fragment from every runner: a list of (batch, metrics)."""
        if self.local_runner is not None:
            return [self.local_runner.sample()]
        return self._get([r.sample.remote() for r in self.remote_runners])

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
