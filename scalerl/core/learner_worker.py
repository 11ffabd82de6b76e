"""LearnerWorker: one data-parallel learner process of a `LearnerGroup`, as a Ray actor.

It holds the `ModuleLearners` of every module and joins a torch.distributed process group
with the other workers; `Learner.apply_gradients` all-reduces each gradient in it, so all
workers keep identical weights.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import torch

from scalerl.core.learner import Learner
from scalerl.core.module_learners import ModuleLearners
from scalerl.core.rl_module import RLModuleSpec
from scalerl.utils import nested

# How long a learner waits for the others in a collective call (the set-up included).
_COLLECTIVE_TIMEOUT = timedelta(minutes=10)


def per_learner_minibatch_size(config: Any) -> int:
    """`minibatch_size` is the global minibatch; each of N learners takes 1/N of it, so
    the SGD step count and its effective batch match `num_learners=0`."""
    return max(1, config.minibatch_size // max(1, config.num_learners))


class LearnerWorker:
    """One data-parallel learner process (rank `rank` of `world_size`), run as a Ray actor:
    the `ModuleLearners` of every module, in a torch.distributed process group."""

    def __init__(self, config: Any, learner_class: type[Learner], rank: int, world_size: int):
        self.rank = rank
        self.world_size = world_size
        self.config = config
        self.learners = ModuleLearners(config, learner_class, _per_learner_config)

    def address(self) -> tuple[str, int]:
        """This node's IP and a free TCP port, for the process group's rendezvous (rank 0)."""
        import ray

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def setup(self, addr: str, port: int, specs: dict[str, RLModuleSpec]) -> None:
        """Join the process group, then build the modules' learners (`add_module`)."""
        cfg = self.config
        cuda = cfg.num_gpus_per_learner > 0 and torch.cuda.is_available()
        # NCCL needs one GPU per rank; fractional GPUs (two learners on one GPU) use gloo.
        use_nccl = cuda and cfg.num_gpus_per_learner >= 1
        torch.distributed.init_process_group(
            "nccl" if use_nccl else "gloo",
            init_method=f"tcp://{addr}:{port}",
            rank=self.rank,
            world_size=self.world_size,
            timeout=_COLLECTIVE_TIMEOUT,
        )
        for mid, spec in specs.items():
            self.add_module(mid, spec)

    def add_module(self, module_id: str, spec: RLModuleSpec) -> None:
        """Build the learner of a new module; every rank then takes rank 0's whole learner
        state (weights, optimizer, and what derives from them, e.g. target networks)."""
        self.learners.add(module_id, spec)
        learner = self.learners.learners[module_id]
        if self.world_size == 1:
            return
        state = [None]
        if self.rank == 0:
            state = [{"weights": learner.module.state_dict(), **self.get_state(module_id)}]
        torch.distributed.broadcast_object_list(state, src=0)
        if self.rank > 0:
            s = state[0]
            weights = {k: v.to(learner.device) for k, v in s["weights"].items()}
            self.set_state(module_id, weights, s["optimizer_tensors"], s["learner_state"])

    def remove_module(self, module_id: str) -> None:
        """Drop a module's learner."""
        self.learners.remove(module_id)

    def update(
        self, shards: dict[str, dict], timestep: int, steps: dict[str, int | None]
    ) -> dict[str, dict[str, Any]]:
        """Update this rank's learners on their `shards` of the batches; {module_id: metrics}.

        Args:
            shards: Module id -> this learner's part of its batch (numpy columns).
            timestep: Lifetime env steps sampled, for the schedules.
            steps: Module id -> minibatch steps per epoch, the same on every rank so that
                the all-reduces pair up; None lets the learner count them from its shard.
        """
        # Arrays from Ray's object store are read-only; torch wants writable ones.
        shards = {mid: _writable(shard) for mid, shard in shards.items()}
        metrics = self.learners.update(shards, timestep, steps)
        for mid in shards:
            self._sync_extra_state(mid)
        return metrics

    def _sync_extra_state(self, module_id: str) -> None:
        """State beyond weights (e.g. PPO's adaptive KL coefficient) follows rank 0, so all
        learners keep optimizing the same loss; each keeps its own shuffling RNG."""
        if self.world_size == 1:
            return
        learner = self.learners.learners[module_id]
        state = [learner.get_extra_state() if self.rank == 0 else None]
        torch.distributed.broadcast_object_list(state, src=0)
        if self.rank > 0:
            own = learner.get_extra_state()
            leader = {**state[0], **({"rng": own["rng"]} if "rng" in own else {})}
            if leader != own:  # set only on a difference: setting may reset derived state
                learner.set_extra_state(leader)

    def get_weights(self, module_ids: list[str] | None, inference_only: bool = False) -> dict:
        """Module id -> this rank's module weights as numpy arrays."""
        return self.learners.get_weights(module_ids, inference_only)

    def set_weights(self, weights: dict[str, dict[str, Any]]) -> None:
        """Load module weights (keyed by module id) into this rank's learners."""
        self.learners.set_weights(weights)

    def get_state(self, module_id: str) -> dict[str, Any]:
        """A module's optimizer tensors and JSON learner state (`ModuleLearners.get_state`)."""
        return self.learners.get_state(module_id)

    def set_state(self, module_id: str, weights: dict, tensors: dict, learner_state: dict) -> None:
        """Restore a module's weights, optimizer tensors and learner state from a checkpoint.

        Ranks other than 0 then reseed their RNG from the restored one, so that each rank
        still shuffles its minibatches differently.
        """
        self.learners.set_state(module_id, weights, tensors, learner_state)
        if self.rank > 0:  # rank 0's RNG state was saved; derive a distinct stream from it
            learner = self.learners.learners[module_id]
            seed = int(learner.rng.integers(2**62))
            learner.rng = np.random.default_rng([seed, self.rank])

    def foreach_learner(self, fn: Callable[[Learner], Any]) -> dict[str, Any]:
        """`fn(learner)` on this rank's learner of every module; {module_id: result}."""
        return self.learners.foreach(fn)


def _writable(shard: dict) -> dict:
    return nested.map_structure(lambda v: v if v.flags.writeable else v.copy(), shard)


def _per_learner_config(config: Any) -> Any:
    config.minibatch_size = per_learner_minibatch_size(config)
    return config
