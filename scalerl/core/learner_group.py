"""LearnerGroup: the Learner(s) that update the module(s).

`num_learners=0`: one Learner in the driver process. `num_learners=N >= 1`: N Learners in
Ray actors doing data-parallel SGD (RLlib's LearnerGroup): each update's batch is split
along the env axis into N shards, every learner computes its loss on its shard, and the
gradients are averaged with a torch.distributed all-reduce (gloo on CPU, nccl on GPUs)
before each optimizer step, so all learners keep identical weights. The driver keeps a
local copy of the module, synced from learner 0 after every update.
"""

from __future__ import annotations

import logging
import math
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerl.core.learner import Learner, read_learner_files
from scalerl.core.rl_module import Columns, RLModule, RLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.batch import split_fragment
from scalerl.utils.errors import CheckpointError, ConfigError
from scalerl.utils.ray_init import init_ray_if_needed

logger = logging.getLogger(__name__)

# After this many seconds without all learner actors started, say why we are waiting.
_START_WARNING_S = 60
# How long a learner waits for the others in a collective call (the set-up included).
_COLLECTIVE_TIMEOUT = timedelta(minutes=10)


def per_learner_minibatch_size(config: Any) -> int:
    """`minibatch_size` is the global minibatch; each of N learners takes 1/N of it, so
    the SGD step count and its effective batch match `num_learners=0`."""
    return max(1, config.minibatch_size // max(1, config.num_learners))


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


class LearnerWorker:
    """One data-parallel Learner (rank `rank` of `world_size`), run as a Ray actor."""

    def __init__(
        self,
        config: Any,
        learner_class: type[Learner],
        module_spec: RLModuleSpec,
        rank: int,
        world_size: int,
    ):
        self.rank = rank
        self.world_size = world_size
        cfg = config.copy()
        cfg.minibatch_size = per_learner_minibatch_size(config)
        self.learner: Learner = learner_class(cfg, module_spec)
        # Same initial weights come from rank 0 (see `setup`); the minibatch shuffles differ.
        if config.seed is not None and rank > 0:
            self.learner.rng = np.random.default_rng([config.seed, rank])

    def address(self) -> tuple[str, int]:
        """This node's IP and a free TCP port, for the process group's rendezvous (rank 0)."""
        import ray

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def setup(self, addr: str, port: int) -> None:
        """Join the process group; then every learner takes rank 0's initial weights."""
        dist = torch.distributed
        # NCCL needs one GPU per rank; fractional GPUs (two learners on one GPU) use gloo.
        use_nccl = (
            self.learner.device.type == "cuda" and self.learner.config.num_gpus_per_learner >= 1
        )
        dist.init_process_group(
            "nccl" if use_nccl else "gloo",
            init_method=f"tcp://{addr}:{port}",
            rank=self.rank,
            world_size=self.world_size,
            timeout=_COLLECTIVE_TIMEOUT,
        )
        with torch.no_grad():
            for tensor in self.learner.module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def update(self, shard: dict, timestep: int, steps: int | None) -> dict[str, float]:
        """Update this rank's learner on its `shard` of the batch and return its metrics.

        Args:
            shard: This learner's part of the batch (numpy columns).
            timestep: Lifetime env steps sampled, for the schedules.
            steps: Minibatch steps per epoch, the same on every rank so that DDP's all-reduces
                pair up; None lets the learner count them from its shard.
        """
        self.learner.fixed_steps_per_epoch = steps
        # Arrays from Ray's object store are read-only; torch wants writable ones.
        shard = {k: v if v.flags.writeable else v.copy() for k, v in shard.items()}
        metrics = self.learner.update(shard, timestep)
        self._sync_extra_state()
        return metrics

    def _sync_extra_state(self) -> None:
        """State beyond weights (e.g. PPO's adaptive KL coefficient) follows rank 0, so all
        learners keep optimizing the same loss; each keeps its own shuffling RNG."""
        if self.world_size == 1:
            return
        state = [self.learner.get_extra_state() if self.rank == 0 else None]
        torch.distributed.broadcast_object_list(state, src=0)
        if self.rank > 0:
            own = self.learner.get_extra_state()
            self.learner.set_extra_state(
                {**state[0], **({"rng": own["rng"]} if "rng" in own else {})}
            )

    def get_weights(self) -> dict[str, np.ndarray]:
        """This rank's module weights as numpy arrays, keyed by state-dict name."""
        return self.learner.get_weights()

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load module weights into this rank's learner."""
        self.learner.set_weights(weights)

    def get_state(self) -> dict[str, Any]:
        """Optimizer tensors and JSON-able state, as `Learner.save` writes them."""
        learner = self.learner
        return {
            "optimizer_tensors": {k: v.detach().cpu() for k, v in learner.state_tensors().items()},
            "learner_state": {
                "optimizer": learner.optimizer_hyperparameters(),
                "extra": self.learner.get_extra_state(),
            },
        }

    def set_state(self, weights: dict[str, Any], tensors: dict, learner_state: dict) -> None:
        """Restore weights, optimizer tensors and learner state from a checkpoint.

        Ranks other than 0 then reseed their RNG from the restored one, so that each rank
        still shuffles its minibatches differently.
        """
        self.learner.set_state(weights, tensors, learner_state)
        if self.rank > 0:  # rank 0's RNG state was saved; derive a distinct stream from it
            seed = int(self.learner.rng.integers(2**62))
            self.learner.rng = np.random.default_rng([seed, self.rank])


def validate_num_learners(config: Any) -> None:
    """Fail early on settings that cannot be split over `num_learners` learners."""
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
    """One local Learner in the driver (`num_learners=0`) or N data-parallel Ray actors."""

    def __init__(self, config: Any, learner_class: type[Learner], module_spec: RLModuleSpec):
        self.config = config
        self.learner: Learner | None = None
        self.remote_learners: list = []
        self._module: RLModule | None = None
        if config.num_learners == 0:
            self.learner = learner_class(config, module_spec)
            return
        validate_num_learners(config)
        init_ray_if_needed()
        import ray

        n = config.num_learners
        _check_cluster_capacity(config)
        self._module = module_spec.build()
        actor_cls = ray.remote(LearnerWorker).options(
            num_cpus=config.num_cpus_per_learner,
            num_gpus=config.num_gpus_per_learner,
            max_restarts=0,
        )
        self.remote_learners = [
            actor_cls.remote(config, learner_class, module_spec, rank, n) for rank in range(n)
        ]
        self._wait_started(n)
        addr, port = ray.get(self.remote_learners[0].address.remote())
        self._get([w.setup.remote(addr, port) for w in self.remote_learners], fatal=True)
        self._set_local_weights(ray.get(self.remote_learners[0].get_weights.remote()))

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
        """True when the group trains with one in-process learner (`num_learners=0`)."""
        return self.learner is not None

    @property
    def module(self) -> RLModule:
        """The trained module (with remote learners: a driver copy of learner 0's weights)."""
        if self.learner is not None:
            return self.learner.module
        return self._module

    # -- training ---------------------------------------------------------------------------
    def update(self, batch: Any, timestep: int) -> dict[str, float]:
        """Train on `batch` and return the metrics, as RLlib's `LearnerGroup.update`.

        With remote learners the batch is split into one shard per learner, each takes the
        same number of minibatch steps, and the metrics are averaged over learners; the local
        module copy then gets rank 0's new weights.

        Args:
            batch: A sample in the batch schema (numpy columns).
            timestep: Lifetime env steps sampled, for the schedules.

        Returns:
            Metric name -> float.
        """
        if self.learner is not None:
            return self.learner.update(batch, timestep)
        self._check_running()
        shards = split_fragment(batch, len(self.remote_learners))
        sizes = [int(s[Columns.REWARDS].size) for s in shards]
        steps = steps_per_epoch(sizes, per_learner_minibatch_size(self.config))
        refs = [w.update.remote(s, timestep, steps) for w, s in zip(self.remote_learners, shards)]
        # Actor calls run in order: this returns the weights after rank 0's update.
        refs.append(self.remote_learners[0].get_weights.remote())
        *rows, weights = self._get(refs, fatal=True)
        self._set_local_weights(weights)
        return _reduce_metrics(rows)

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """The current module weights as numpy arrays, keyed by state-dict name."""
        if self.learner is not None:
            return self.learner.get_weights()
        return {k: v.detach().cpu().numpy().copy() for k, v in self._module.state_dict().items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load module weights into every learner (one `ray.put` for all remote learners)."""
        if self.learner is not None:
            self.learner.set_weights(weights)
            return
        self._check_running()
        import ray

        self._set_local_weights(weights)
        ref = ray.put({k: np.asarray(v) for k, v in weights.items()})
        self._get([w.set_weights.remote(ref) for w in self.remote_learners])

    def _set_local_weights(self, weights: dict[str, Any]) -> None:
        self._module.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})

    # -- checkpoints ------------------------------------------------------------------------
    # With remote learners the driver writes learner 0's state in `Learner.save`'s layout
    # (so checkpoints move freely between any `num_learners`, and work across nodes).
    def save(self, directory: Path, module_id: str) -> None:
        """Write the learner state for `module_id` under `directory / "learner"`.

        The module's weights, the optimizer tensors and the JSON learner state (rank 0's, for
        remote learners).
        """
        if self.learner is not None:
            self.learner.save(directory / "learner", module_id)
            return
        self._check_running()
        import ray

        state = ray.get(self.remote_learners[0].get_state.remote())
        out = directory / "learner"
        self._module._write(out / "rl_module" / module_id)
        ckpt.save_tensors(out / "optimizer.safetensors", state["optimizer_tensors"])
        ckpt.write_json(out / "learner_state.json", state["learner_state"])

    def load(self, view: ckpt.CheckpointView, module_id: str) -> None:
        """Restore from the verified `learner_group` directory `view` of a checkpoint."""
        if self.learner is not None:
            self.learner.load(view.sub("learner"), module_id)
            return
        self._check_running()
        import ray

        _, tensors, learner_state = read_learner_files(view.sub("learner"), module_id, self._module)
        args = [ray.put(x) for x in (self.get_weights(), tensors, learner_state)]
        self._get([w.set_state.remote(*args) for w in self.remote_learners])

    # -- shutdown ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Kill the learner actors. Safe to call more than once, and with a local learner."""
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


def _reduce_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean over learners; counters (`num_*`) are summed."""
    out = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        out[key] = float(sum(values)) if key.startswith("num_") else float(np.mean(values))
    return out
