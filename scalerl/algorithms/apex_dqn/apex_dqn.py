"""Ape-X DQN (Horgan et al. 2018, "Distributed Prioritized Experience Replay").

Many actors (Ray EnvRunner actors) act with fixed exploration rates of their own, turn
their fragments into n-step transitions with initial priorities, and send them to replay
shards (Ray actors). The learner, in the driver, pulls prioritized batches from the
shards, takes DQN steps (double Q, dueling, n-step: `DQNLearner`), and sends the new
priorities back. Nothing waits for anything else: every runner always has a fragment in
progress and every shard up to `max_requests_in_flight_per_replay_shard` batches; the
driver handles whatever is ready, and an actor gets new weights when its fragment
returns and `max_weight_sync_delay` of its steps have passed since its last sync.

The driver moves only object references and the small episode metrics: transitions go
from a runner to a shard through the object store, so the design holds for hundreds of
runners and many shards (one driver loop iteration per ready reference).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.algorithm_config import NotProvided
from scalerl.algorithms.apex_dqn.apex_env_runner import ApexEnvRunner
from scalerl.algorithms.apex_dqn.replay_shard import ReplayShard
from scalerl.algorithms.dqn.dqn import DQNConfig
from scalerl.algorithms.dqn.dqn_learner import DQNLearner
from scalerl.algorithms.replay import REPLAY_DIR
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.columns import Columns
from scalerl.env.async_requests import AsyncRequests, AsyncResult
from scalerl.utils import nested
from scalerl.utils.checkpoints import CheckpointView
from scalerl.utils.errors import CheckpointError, ConfigError, EnvRunnerError
from scalerl.utils.replay_buffers.storage import load_buffer_state, save_buffer_state


class APEXDQNConfig(DQNConfig):
    """DQN settings plus Ape-X's. DQN's `epsilon` schedule is not used (each runner has its
    own rate); `training_intensity` caps replayed / sampled transitions (None: as fast as
    the learner goes).

    Defaults that differ from `DQNConfig`'s: `num_env_runners=2`, `n_step=3`,
    `rollout_fragment_length=50`.
    """

    def __init__(self, algo_class: type | None = None):
        """An APEX-DQN config with Ape-X's defaults (`algo_class`: the algorithm to build)."""
        super().__init__(algo_class or APEXDQN)
        self.num_env_runners = 2
        self.n_step = 3
        self.rollout_fragment_length = 50
        self.num_replay_buffer_shards = 1
        self.apex_epsilon = 0.4
        self.apex_epsilon_alpha = 7.0
        self.max_weight_sync_delay = 400
        self.max_requests_in_flight_per_replay_shard = 2

    def training(
        self,
        *,
        num_replay_buffer_shards: int = NotProvided,
        apex_epsilon: float = NotProvided,
        apex_epsilon_alpha: float = NotProvided,
        max_weight_sync_delay: int = NotProvided,
        max_requests_in_flight_per_replay_shard: int = NotProvided,
        **kwargs: Any,
    ) -> APEXDQNConfig:
        """Set Ape-X's settings (and, through `kwargs`, `DQNConfig.training`'s).

        Args:
            num_replay_buffer_shards: Replay shards (Ray actors) sharing
                `replay_buffer_config["capacity"]` (an integer >= 1). Default: `1`.
            apex_epsilon: Base exploration rate: runner i of N explores with
                apex_epsilon^(1 + apex_epsilon_alpha i / (N - 1)); in [0, 1]. Default:
                `0.4`.
            apex_epsilon_alpha: The exponent's spread over the runners (a number >= 0).
                Default: `7.0`.
            max_weight_sync_delay: Env steps of a runner between weight syncs (an integer
                >= 0). Default: `400`.
            max_requests_in_flight_per_replay_shard: Replayed batches prefetched per shard
                (an integer >= 1). Default: `2`.
            **kwargs: `DQNConfig.training`'s and `AlgorithmConfig.training`'s settings;
                any other name raises a ConfigError that suggests the nearest valid one.

        Returns:
            This config, for chaining.
        """
        settings = locals()
        super().training(**kwargs)
        return self._set("training", settings)

    def validate(self) -> None:
        """DQNConfig's checks plus Ape-X's: Ray runners, shards, exploration rates, no
        multi-agent and no observation filter."""
        super().validate()
        if self.is_multi_agent:
            raise ConfigError(
                "APEX-DQN is single-agent so far: drop `config.multi_agent(...)` (PPO, DQN and "
                "SAC train several policies)."
            )
        if self.num_env_runners < 1:
            raise ConfigError(
                "APEX-DQN samples with Ray EnvRunner actors: set `num_env_runners` >= 1 "
                f"(got {self.num_env_runners}); for sampling in the driver use DQN."
            )
        self._check_int("num_replay_buffer_shards", 1)
        self._check_int("max_weight_sync_delay", 0)
        self._check_int("max_requests_in_flight_per_replay_shard", 1)
        self.check_number("apex_epsilon")
        self.check_number("apex_epsilon_alpha")
        if not self.apex_epsilon_alpha >= 0:
            raise ConfigError(
                f"`apex_epsilon_alpha` must be >= 0, got {self.apex_epsilon_alpha!r}."
            )
        if not 0.0 <= self.apex_epsilon <= 1.0:
            raise ConfigError(f"`apex_epsilon` must be in [0, 1], got {self.apex_epsilon!r}.")
        if self.observation_filter not in (None, "NoFilter"):
            raise ConfigError(
                "APEX-DQN does not support `observation_filter` yet: set it to 'NoFilter' "
                "(or use DQN, which does)."
            )


class APEXDQN(Algorithm):
    """Ape-X DQN (Horgan et al., 2018): asynchronous sampling into sharded prioritized replay.

    EnvRunner actors, each with its own fixed epsilon, sample without waiting for the
    learner; their transitions go to `num_replay_buffer_shards` replay-shard actors, from
    which the learner replays batches and sends back new priorities.
    """

    config_class = APEXDQNConfig
    learner_class = DQNLearner
    env_runner_class = ApexEnvRunner
    needs_env_runners = True

    def __init__(self, config: APEXDQNConfig):
        super().__init__(config)
        import ray

        num_shards = config.num_replay_buffer_shards
        capacity = math.ceil(config.replay_buffer_config.get("capacity", 50_000) / num_shards)
        shard_cls = ray.remote(ReplayShard).options(num_cpus=0, max_restarts=0)
        seed = config.seed
        self.replay_shards = [
            shard_cls.remote(
                config.replay_buffer_config, capacity, None if seed is None else seed + 1000 + i
            )
            for i in range(num_shards)
        ]
        self.num_env_steps_trained_lifetime = 0
        self._num_updates = 0  # learner steps so far: the weights' version
        self._weights_ref: Any = None
        self._weights_version = -1
        # Sampling: `max_requests_in_flight_per_env_runner` calls of `sample_transitions` in
        # flight per runner (EnvRunnerGroup's fault tolerance replaces runners that die or
        # stall; their calls are re-sent).
        self.sampling = AsyncRequests(
            self.env_runner_group, config.max_requests_in_flight_per_env_runner
        )
        self._steps_since_sync: dict[int, int] = {}  # runner index -> env steps
        self._next_shard = 0
        self._waiting: set[int] = set()  # runners held back while the learner catches up
        self._replaying: dict[Any, Any] = {}  # batch ref -> shard
        self._request_samples()

    # -- the asynchronous loop -------------------------------------------------------------
    def training_step(self) -> dict[str, Any]:
        """Store finished samples in the shards and learn on replayed batches until
        `min_sample_timesteps_per_iteration` env steps are sampled.

        Returns:
            The learner metrics (means over this iteration's updates) and the shards' replay
            buffer totals.

        Raises:
            EnvRunnerError: If no EnvRunner is left to sample and nothing is being replayed.
        """
        import ray

        cfg = self.config
        rows: list[dict] = []
        start = self.num_env_steps_sampled_lifetime
        while self.num_env_steps_sampled_lifetime - start < cfg.min_sample_timesteps_per_iteration:
            self._request_replays()
            refs = [*self.sampling.in_flight(), *self._replaying]
            if not refs:
                raise EnvRunnerError(
                    "APEX-DQN has neither a sample nor a replayed batch on its way: no EnvRunner "
                    "is left to sample (see `config.fault_tolerance(...)`)."
                )
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            if not ready:
                ready, _ = ray.wait(refs, num_returns=1, timeout=cfg.sample_timeout_s)
            # 1. Fragments that are done go to a replay shard; the runner samples on.
            #    (Runners silent past `sample_timeout_s` get a health probe in there.)
            with self._timer("env_runner_sampling_timer"):
                for result in self.sampling.fetch_ready(timeout_s=0):
                    self._store_sample(result)
                self._request_samples()
            # 2. Replayed batches: one DQN step each, new priorities back to their shard.
            with self._timer("learner_update_timer"):
                for ref in ready:
                    if ref in self._replaying:
                        self._learn(ref, rows)
        stats = ray.get([shard.stats.remote() for shard in self.replay_shards])
        learner_metrics = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
        learner_metrics["num_updates"] = len(rows)
        learner_metrics["num_module_steps_trained_lifetime"] = self.num_env_steps_trained_lifetime
        return {
            "learners": {DEFAULT_MODULE_ID: learner_metrics},
            "replay_buffer": {
                "num_transitions": sum(s["num_transitions"] for s in stats),
                "num_added": sum(s["num_added"] for s in stats),
                "nbytes": sum(s["nbytes"] for s in stats),
                "num_shards": len(stats),
            },
        }

    def _request_samples(self) -> None:
        """Top up every healthy runner that is not held back (new and replacement runners
        included) to `max_requests_in_flight_per_env_runner` calls."""
        for slot in self.env_runner_group.healthy_slots():
            if slot.index not in self._waiting:
                self._steps_since_sync.setdefault(slot.index, 0)
                self.sampling.request("sample_transitions", num_returns=2, runner_index=slot.index)

    def _store_sample(self, result: AsyncResult) -> None:
        metrics, (data_ref,) = result.value, result.other_refs
        self.record_sampling([metrics])
        shard = self.replay_shards[self._next_shard]
        self._next_shard = (self._next_shard + 1) % len(self.replay_shards)
        shard.add.remote(data_ref)  # runner -> shard through the object store
        index = result.runner_index
        self._steps_since_sync[index] = (
            self._steps_since_sync.get(index, 0) + metrics["num_env_steps"]
        )
        if self._steps_since_sync[index] >= self.config.max_weight_sync_delay:
            self._sync_runner(index)
        if self._learner_behind():
            self._waiting.add(index)  # resumes when the learner has caught up

    def _learner_behind(self) -> bool:
        """With `training_intensity`: has the learner fallen more than one fragment per
        runner behind it? (On a machine shared by runners and learner, sampling would
        otherwise take the learner's CPU and the replay ratio would drift with load.)"""
        cfg = self.config
        if cfg.training_intensity is None:
            return False
        if self.num_env_steps_sampled_lifetime < cfg.num_steps_sampled_before_learning_starts:
            return False
        fragment = cfg.get_rollout_fragment_length() * cfg.num_envs_per_env_runner
        slack = cfg.training_intensity * fragment * len(self.env_runner_group.healthy_slots())
        target = cfg.training_intensity * self.num_env_steps_sampled_lifetime
        return self.num_env_steps_trained_lifetime < target - slack

    def _sync_runner(self, runner_index: int) -> None:
        """New weights to one runner (one ray.put per weights version, shared by all)."""
        import ray

        if self._weights_version != self._num_updates:
            self._weights_ref = ray.put(self.runner_weights())
            self._weights_version = self._num_updates
        # Runs before the runner's next call; replacements start from these weights too.
        self.env_runner_group.send_weights(runner_index, self._weights_ref, self._num_updates)
        self._steps_since_sync[runner_index] = 0

    def _request_replays(self) -> None:
        """Keep each shard's prefetched batches topped up, within `training_intensity`."""
        cfg = self.config
        if self.num_env_steps_sampled_lifetime < cfg.num_steps_sampled_before_learning_starts:
            return
        B = cfg.train_batch_size
        in_flight = {shard: 0 for shard in self.replay_shards}
        for shard in self._replaying.values():
            in_flight[shard] += 1
        for shard, n in in_flight.items():
            for _ in range(cfg.max_requests_in_flight_per_replay_shard - n):
                if cfg.training_intensity is not None:
                    planned = self.num_env_steps_trained_lifetime + len(self._replaying) * B
                    if planned >= cfg.training_intensity * self.num_env_steps_sampled_lifetime:
                        return
                self._replaying[shard.sample.remote(B)] = shard

    def _learn(self, batch_ref: Any, rows: list[dict]) -> None:
        import ray

        shard = self._replaying.pop(batch_ref)
        batch = ray.get(batch_ref)
        if batch is None:  # the shard's first transitions are still on their way
            return
        batch = nested.map_structure(np.array, batch)  # writable copies of object-store views
        timestep = self.num_env_steps_sampled_lifetime
        out = self.learner_group.update({DEFAULT_MODULE_ID: batch}, timestep)[DEFAULT_MODULE_ID]
        shard.update_priorities.remote(batch[Columns.INDICES], out.pop("td_error"))
        rows.append(out)
        self._num_updates += 1
        self.num_env_steps_trained_lifetime += len(batch[Columns.INDICES])
        if self._waiting and not self._learner_behind():
            self._waiting.clear()
            self._request_samples()

    # -- checkpoints (`store_buffer_in_checkpoints`) -----------------------------------------
    def save_extra_state(self, directory: Path) -> None:
        import ray

        if self.config.store_buffer_in_checkpoints:
            states = ray.get([shard.get_state.remote() for shard in self.replay_shards])
            for i, state in enumerate(states):
                save_buffer_state(directory / REPLAY_DIR / f"shard_{i}", state)

    def restore_extra_state(self, view: CheckpointView) -> None:
        import ray

        if not (self.config.store_buffer_in_checkpoints and view.children(REPLAY_DIR)):
            return
        stored = view.children(REPLAY_DIR)
        root = view.path / REPLAY_DIR
        if len(stored) != len(self.replay_shards):
            raise CheckpointError(
                f"`{root}` holds {len(stored)} replay shards, this algorithm has "
                f"{len(self.replay_shards)}: set `num_replay_buffer_shards={len(stored)}`."
            )
        for i, shard in enumerate(self.replay_shards):
            arrays, meta = load_buffer_state(view.sub(f"{REPLAY_DIR}/shard_{i}"))
            try:
                ray.get(shard.set_state.remote(arrays, meta))
            except ray.exceptions.RayTaskError as e:
                raise CheckpointError(
                    f"The replay shard in `{root / f'shard_{i}'}` does not fit this "
                    f"algorithm's shards ({e.cause}). Set `replay_buffer_config` as it was "
                    "when the checkpoint was written."
                ) from None

    def stop(self) -> None:
        if not self._stopped and getattr(self, "replay_shards", None):
            import ray

            for shard in self.replay_shards:
                ray.kill(shard)
            self.replay_shards = []
        super().stop()
