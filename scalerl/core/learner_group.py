"""LearnerGroup: the learners that update the modules, keyed by module id.

`num_learners=0`: one `ModuleLearners` (a Learner per module) in the driver process.
`num_learners=N >= 1`: N `LearnerWorker` Ray actors doing data-parallel SGD (RLlib's
LearnerGroup), each with a Learner per module: each module's batch is split into N shards
(`utils.batch.split_for_learners`), every learner computes its loss on its shard, and the
gradients are averaged with a torch.distributed all-reduce (gloo on CPU, nccl on GPUs)
before each optimizer step, so all learners keep identical weights. The driver keeps
copies of the modules, synced from learner 0 after every update.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.learner import Learner
from scalerl.core.learner_worker import LearnerWorker, per_learner_minibatch_size
from scalerl.core.module_learners import (
    ModuleLearners,
    module_weights,
    read_module_state,
    save_module_state,
)
from scalerl.core.rl_module import Columns, RLModuleSpec
from scalerl.core.rl_module.multi_rl_module import MultiRLModule, MultiRLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.batch import split_for_learners
from scalerl.utils.errors import CheckpointError, ConfigError
from scalerl.utils.ray_init import init_ray_if_needed

logger = logging.getLogger(__name__)

# After this many seconds without all learner actors started, say why we are waiting.
_START_WARNING_S = 60


def steps_per_epoch(shard_sizes: list[int], minibatch_size: int) -> int | None:
    """The number of minibatches every learner must take per epoch, or None if the
    shards are equal (then each learner's own count, ceil(size / minibatch_size), agrees).

    Every learner must call the gradient all-reduce equally often, or they deadlock.
    With unequal shards (total envs not divisible by `num_learners`) each learner splits
    its whole shard into the same k = ceil(mean shard / minibatch_size) minibatches of
    about equal size: no sample is dropped or duplicated; the larger shards' minibatches
    are slightly larger (each learner's mean gradient then weighs equally).
    """
    if len(set(shard_sizes)) == 1:
        return None
    mean = sum(shard_sizes) / len(shard_sizes)
    return max(1, min(min(shard_sizes), math.ceil(mean / minibatch_size)))


def validate_num_learners(config: Any) -> None:
    """Fail early on on-policy single-agent settings that cannot be split over
    `num_learners` learners: every learner needs whole env columns of the rollout."""
    n = config.num_learners
    envs = max(1, config.num_env_runners) * config.num_envs_per_env_runner
    if envs < n:
        per_runner = math.ceil(n / max(1, config.num_env_runners))
        raise ConfigError(
            f"`num_learners={n}` splits every train batch along the env axis, one share of "
            f"envs per learner, but there are only {envs} env(s) in total "
            f"(num_env_runners={config.num_env_runners} x num_envs_per_env_runner="
            f"{config.num_envs_per_env_runner}). Use at least {n} envs, e.g. "
            f"`config.env_runners(num_envs_per_env_runner={per_runner})`, or fewer learners."
        )
    validate_minibatch_size(config)


def validate_minibatch_size(config: Any) -> None:
    """`minibatch_size` is split over the learners: it must be at least `num_learners`."""
    n = config.num_learners
    if config.minibatch_size < n:
        raise ConfigError(
            f"`minibatch_size` ({config.minibatch_size}) is split over {n} learners and must "
            f"be at least `num_learners`."
        )


def _check_cluster_capacity(config: Any) -> None:
    """Fail now if the whole Ray cluster could never hold the learners (rather than wait
    forever for resources); if it only lacks free resources, `_wait_started` warns."""
    import ray

    n = config.num_learners
    total = ray.cluster_resources()
    for name, per_learner, setting in (
        ("CPU", config.num_cpus_per_learner, "num_cpus_per_learner"),
        ("GPU", config.num_gpus_per_learner, "num_gpus_per_learner"),
    ):
        need, have = n * per_learner, total.get(name, 0.0)
        if need > have:
            raise ConfigError(
                f"{n} learners x `{setting}={per_learner}` need {need:g} {name}s, but the Ray "
                f"cluster has {have:g}. Lower `num_learners` or `{setting}`, or start Ray with "
                f"more resources."
            )


class LearnerGroup:
    """The learners of every module, in the driver (`num_learners=0`) or in N data-parallel
    Ray actors; one interface keyed by module id for single- and multi-agent runs.

    Algorithms talk to the learners only through this group: `update` batches keyed by
    module id (metrics keyed by module id back, with per-sample outputs such as TD errors),
    `get_weights` / `set_weights` keyed by module id, `save` / `load`, `add_module` /
    `remove_module`, and `foreach_learner` for anything else.

    Args:
        config: The algorithm config (each module's learner gets its per-module config).
        learner_class: The algorithm's Learner class.
        module_spec: The modules to train: a MultiRLModuleSpec, or one RLModuleSpec (a
            single-agent run: its module is `default_policy`).
        policies_to_train: Module ids to train; None trains all of them.
    """

    def __init__(
        self,
        config: Any,
        learner_class: type[Learner],
        module_spec: MultiRLModuleSpec | RLModuleSpec,
        policies_to_train: Iterable[str] | None = None,
    ):
        if isinstance(module_spec, RLModuleSpec):
            module_spec = MultiRLModuleSpec({DEFAULT_MODULE_ID: module_spec})
        specs = dict(module_spec.rl_module_specs)
        self.config = config
        self.policies_to_train: set[str] = set(
            specs if policies_to_train is None else policies_to_train
        )
        self._local: ModuleLearners | None = None
        self.remote_learners: list = []
        self._modules = MultiRLModule()  # with remote learners: the driver's copies
        if config.num_learners == 0:
            self._local = ModuleLearners(config, learner_class)
            for mid, spec in specs.items():
                self._local.add(mid, spec)
            return
        init_ray_if_needed()
        import ray

        n = config.num_learners
        _check_cluster_capacity(config)
        actor_cls = ray.remote(LearnerWorker).options(
            num_cpus=config.num_cpus_per_learner,
            num_gpus=config.num_gpus_per_learner,
            max_restarts=0,
        )
        self.remote_learners = [
            actor_cls.remote(config, learner_class, rank, n) for rank in range(n)
        ]
        self._wait_started(n)
        addr, port = ray.get(self.remote_learners[0].address.remote())
        self._get([w.setup.remote(addr, port, specs) for w in self.remote_learners], fatal=True)
        for mid, spec in specs.items():
            self._modules.add_module(mid, spec.build())
        self._pull_weights(list(specs))

    def _wait_started(self, n: int) -> None:
        """Warn (once) if Ray cannot place the learners yet, instead of waiting silently."""
        import ray

        refs = [w.__ray_ready__.remote() for w in self.remote_learners]
        _, pending = ray.wait(refs, num_returns=n, timeout=_START_WARNING_S)
        if pending:
            cfg = self.config
            logger.warning(
                "%d of %d learner actors have not started after %d s. Each needs "
                "num_cpus_per_learner=%s CPU(s) and num_gpus_per_learner=%s GPU(s); Ray has "
                "%s available. Still waiting; lower `num_learners` or the EnvRunners' share, "
                "or add resources.",
                len(pending),
                n,
                _START_WARNING_S,
                cfg.num_cpus_per_learner,
                cfg.num_gpus_per_learner,
                ray.available_resources(),
            )
        self._get(refs, fatal=True)

    @property
    def is_local(self) -> bool:
        """True when the group trains in this process (`num_learners=0`)."""
        return self._local is not None

    @property
    def module(self) -> MultiRLModule:
        """The trained modules keyed by module id (with remote learners: driver copies of
        learner 0's weights, refreshed after every update)."""
        if self._local is not None:
            return MultiRLModule({m: lr.module for m, lr in self._local.learners.items()})
        return self._modules

    @property
    def module_ids(self) -> list[str]:
        """The ids of all modules, trained or not."""
        return list(self.module.keys())

    def get_local_learner(self, module_id: str = DEFAULT_MODULE_ID) -> Learner:
        """The in-process Learner of `module_id` (`num_learners=0` only), for tests and
        debugging; algorithms go through the group's methods."""
        if self._local is None:
            raise RuntimeError("The learners run in Ray actors (`num_learners > 0`).")
        return self._local.learners[module_id]

    # -- training ---------------------------------------------------------------------------
    def update(self, batches: dict[str, Any], timestep: int) -> dict[str, dict[str, Any]]:
        """Train every module in `policies_to_train` that has a batch in `batches`.

        With remote learners each batch is split into one shard per learner (see
        `split_for_learners`), every learner takes the same number of minibatch steps, the
        metrics are averaged over learners (`num_*` counters summed, per-sample arrays
        such as `td_error` joined in batch order) and the driver's module copies get rank
        0's new weights.

        Args:
            batches: Module id -> a batch in the batch schema (numpy columns).
            timestep: Lifetime env steps sampled, for the schedules.

        Returns:
            Module id -> metric name -> value, for the modules trained.
        """
        batches = {
            mid: b for mid, b in batches.items() if mid in self.policies_to_train and b is not None
        }
        if not batches:
            return {}
        if self._local is not None:
            return self._local.update(batches, timestep)
        self._check_running()
        n = len(self.remote_learners)
        shards: list[dict[str, Any]] = [{} for _ in range(n)]
        steps: dict[str, int | None] = {}
        copies: dict[str, bool] = {}
        for mid, batch in batches.items():
            parts, copies[mid] = split_for_learners(batch, n)
            for i, part in enumerate(parts):
                shards[i][mid] = part
            sizes = [int(p[Columns.REWARDS].size) for p in parts]
            cfg = self.config.get_config_for_module(mid)
            steps[mid] = steps_per_epoch(sizes, per_learner_minibatch_size(cfg))
        refs = [w.update.remote(s, timestep, steps) for w, s in zip(self.remote_learners, shards)]
        # Actor calls run in order: this returns the weights after rank 0's update.
        refs.append(self.remote_learners[0].get_weights.remote(list(batches)))
        *rows, weights = self._get(refs, fatal=True)
        self._modules.set_state(weights)
        return {mid: _reduce_metrics([r[mid] for r in rows], copies[mid]) for mid in batches}

    # -- weights ----------------------------------------------------------------------------
    def get_weights(
        self, module_ids: Iterable[str] | None = None, inference_only: bool = False
    ) -> dict[str, dict[str, np.ndarray]]:
        """Module id -> that module's weights as numpy arrays, for `module_ids` (default:
        all); `inference_only`: only what acting needs (e.g. SAC's policy, no critics)."""
        if self._local is not None:
            return self._local.get_weights(module_ids, inference_only)
        ids = self._modules.keys() if module_ids is None else module_ids
        return {mid: module_weights(self._modules[mid], inference_only) for mid in ids}

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        """Load weights keyed by module id into every learner (one `ray.put` for all
        remote learners)."""
        if self._local is not None:
            self._local.set_weights(weights)
            return
        self._check_running()
        import ray

        self._modules.set_state(weights)
        arrays = {m: {k: np.asarray(v) for k, v in w.items()} for m, w in weights.items()}
        ref = ray.put(arrays)
        self._get([w.set_weights.remote(ref) for w in self.remote_learners])

    def _pull_weights(self, module_ids: list[str]) -> None:
        import ray

        self._modules.set_state(ray.get(self.remote_learners[0].get_weights.remote(module_ids)))

    # -- modules ----------------------------------------------------------------------------
    def add_module(self, module_id: str, spec: RLModuleSpec, train: bool = True) -> None:
        """Add a learner for a new module on every learner process, trained if `train`."""
        if module_id in self.module:
            raise ConfigError(f"A module `{module_id}` exists already; remove it first.")
        if self._local is not None:
            self._local.add(module_id, spec)
        else:
            self._check_running()
            self._get([w.add_module.remote(module_id, spec) for w in self.remote_learners], True)
            self._modules.add_module(module_id, spec.build())
            self._pull_weights([module_id])
        if train:
            self.policies_to_train.add(module_id)

    def remove_module(self, module_id: str) -> None:
        """Drop the learner of `module_id` (KeyError if unknown) and stop training it."""
        self.module[module_id]  # a clear KeyError for an unknown id
        if self._local is not None:
            self._local.remove(module_id)
        else:
            self._get([w.remove_module.remote(module_id) for w in self.remote_learners])
            self._modules.remove_module(module_id)
        self.policies_to_train.discard(module_id)

    def foreach_learner(self, fn: Callable[[Learner], Any]) -> list[dict[str, Any]]:
        """`fn(learner)` on every module's learner in every learner process (RLlib's
        `foreach_learner`); one {module_id: result} per process. Changes `fn` makes to
        remote learners' weights reach the driver's copies at the next update."""
        if self._local is not None:
            return [self._local.foreach(fn)]
        self._check_running()
        return self._get([w.foreach_learner.remote(fn) for w in self.remote_learners])

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write every module's weights and learner state under `directory / "learner"`
        (with remote learners, rank 0's: checkpoints move between any `num_learners`)."""
        out = directory / "learner"
        for mid, module in self.module.items():
            if self._local is not None:
                state = self._local.get_state(mid)
            else:
                self._check_running()
                import ray

                state = ray.get(self.remote_learners[0].get_state.remote(mid))
            save_module_state(out, mid, module, state)

    def load(self, view: ckpt.CheckpointView, module_ids: Iterable[str] | None = None) -> None:
        """Restore all modules, or only `module_ids` (the others keep their state), from
        the verified `learner_group` directory `view` of a checkpoint."""
        learner_view = view.sub("learner")
        for mid in self.module_ids if module_ids is None else module_ids:
            if mid not in self.module:
                raise CheckpointError(f"This algorithm has no module `{mid}` to restore.")
            weights, tensors, state = read_module_state(learner_view, mid, self.module[mid])
            if self._local is not None:
                self._local.set_state(mid, weights, tensors, state)
                continue
            self._check_running()
            import ray

            args = [ray.put(x) for x in (module_weights(self._modules[mid]), tensors, state)]
            self._get([w.set_state.remote(mid, *args) for w in self.remote_learners])

    # -- shutdown ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Kill the learner actors. Safe to call more than once, and with local learners."""
        if not self.remote_learners:
            return
        import ray

        for worker in self.remote_learners:
            ray.kill(worker)
        self.remote_learners = []

    def _check_running(self) -> None:
        if not self.remote_learners:
            raise RuntimeError("This LearnerGroup's learners were stopped (or one failed).")

    def _get(self, refs: list, fatal: bool = False) -> list:
        """ray.get that raises as soon as any learner fails. With `fatal` (collective calls)
        the group is then stopped: the other learners would wait in the all-reduce."""
        import ray

        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                ray.get(ready)
        except Exception as e:
            if fatal:
                self.stop()
            cause = getattr(e, "cause", None)
            if isinstance(cause, (CheckpointError, ConfigError)):
                raise cause from None  # the user's error, without the actor's traceback
            raise
        return ray.get(refs)


def _reduce_metrics(rows: list[dict[str, Any]], copies: bool) -> dict[str, Any]:
    """Mean over learners; counters (`num_*`) summed; per-sample arrays (e.g. `td_error`)
    joined in shard order, or rank 0's when every learner trained on a copy of the batch."""
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if isinstance(values[0], np.ndarray):
            out[key] = values[0] if copies else np.concatenate(values)
        elif key.startswith("num_"):
            out[key] = float(values[0]) if copies else float(sum(values))
        else:
            out[key] = float(np.mean(values))
    return out
