"""Learner: one module, its optimizer, and the update step of an algorithm."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerl.core.optim import Adam
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError
from scalerl.utils.schedules import Scheduler


class Learner:
    """Owns the trainable module and its optimizer; subclasses define `update()`."""

    def __init__(self, config: Any, module_spec: RLModuleSpec):
        self.config = config
        if config.seed is not None:
            torch.manual_seed(config.seed)
        self.device = torch.device(
            "cuda" if config.num_gpus_per_learner > 0 and torch.cuda.is_available() else "cpu"
        )
        if self.device.type == "cpu":
            # Small networks train fastest on one thread per learner; more threads only
            # contend with the EnvRunners for the same cores.
            torch.set_num_threads(config.num_cpus_per_learner)
        self.module: RLModule = module_spec.build().to(self.device)
        self.optimizer = Adam(self.module.parameters(), lr=self._lr0(), eps=1e-5)
        self.lr_schedule = Scheduler(config.lr)
        self.rng = np.random.default_rng(config.seed)

    def _lr0(self) -> float:
        return Scheduler(self.config.lr).value(0)

    def update(self, batch: Any, timestep: int) -> dict[str, float]:
        raise NotImplementedError

    # -- helpers for subclasses -----------------------------------------------------
    def set_lr(self, timestep: int) -> float:
        lr = self.lr_schedule.value(timestep)
        self.optimizer.lr = lr
        return lr

    def apply_loss(self, loss: torch.Tensor) -> float:
        """Backprop `loss`, clip gradients by the configured rule, and take one step."""
        self.optimizer.zero_grad()
        loss.backward()
        # Data-parallel learners: average the gradients first, so that clipping and the
        # step see the same global gradient on every learner and their weights stay equal.
        self.all_reduce_gradients()
        params = [p for p in self.optimizer.params if p.grad is not None]
        clip = self.config.grad_clip
        if clip is None:
            norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
        elif self.config.grad_clip_by == "value":
            torch.nn.utils.clip_grad_value_(params, clip)
            norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
        self.optimizer.step()
        return float(norm)

    # -- data-parallel helpers (no-ops unless torch.distributed is initialized) ------------
    @staticmethod
    def world_size() -> int:
        """How many learners train this module together (1 without torch.distributed)."""
        dist = torch.distributed
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    def all_reduce_gradients(self) -> None:
        """Replace every gradient by its mean over all learners, in one collective call.

        A parameter has a gradient afterwards if any learner computed one for it (the
        others count as zero), so every learner then takes the same optimizer step.
        """
        world = self.world_size()
        if world == 1:
            return
        params = self.optimizer.params
        flags = torch.tensor(
            [float(p.grad is not None) for p in params], dtype=params[0].dtype, device=self.device
        )
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
            + [flags]
        )
        torch.distributed.all_reduce(flat)
        flat.div_(world)
        offset = 0
        grads = []
        for p in params:
            grads.append(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        for p, g, has_grad in zip(params, grads, flat[offset:].tolist()):
            p.grad = g if has_grad > 0 else None

    def all_reduce_mean(self, value: float) -> float:
        """The mean of a scalar over all learners (for decisions that must agree, e.g. an
        adaptive coefficient driven by a metric); the value itself without torch.distributed."""
        world = self.world_size()
        if world == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / world

    def minibatches(self, size: int, minibatch_size: int, num_epochs: int):
        """Yield index tensors: `num_epochs` (shuffled) passes in minibatches."""
        for _ in range(num_epochs):
            perm = (
                self.rng.permutation(size)
                if self.config.shuffle_batch_per_epoch
                else (np.arange(size))
            )
            perm = torch.from_numpy(perm).to(self.device)
            for start in range(0, size, minibatch_size):
                yield perm[start : start + minibatch_size]

    @staticmethod
    def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        for row in rows:
            for k, v in row.items():
                sums[k] += v
        return {k: v / len(rows) for k, v in sums.items()}

    # -- weights and state ---------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.module.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})

    def get_extra_state(self) -> dict:
        """JSON-able state beyond weights and optimizer (subclasses extend)."""
        return {"rng": self.rng.bit_generator.state}

    def set_extra_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def save(self, directory: Path, module_id: str) -> None:
        self.module._write(directory / "rl_module" / module_id)
        ckpt.save_tensors(directory / "optimizer.safetensors", self.optimizer.state_tensors())
        ckpt.write_json(
            directory / "learner_state.json",
            {"optimizer": self.optimizer.hyperparameters(), "extra": self.get_extra_state()},
        )

    def load(self, directory: Path, module_id: str) -> None:
        self.set_state(*read_learner_files(directory, module_id, self.module))

    def set_state(self, weights: dict[str, Any], tensors: dict, learner_state: dict) -> None:
        """Weights, optimizer tensors and the JSON learner state, as `read_learner_files` gives."""
        self.set_weights(weights)
        try:
            self.optimizer.load_state(tensors, learner_state["optimizer"])
            self.set_extra_state(learner_state["extra"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"The checkpoint holds a corrupt learner state: {e}") from None


def read_learner_files(
    directory: Path, module_id: str, module: RLModule
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """Read a learner's checkpoint files; check the weights fit `module` (loading them into it)."""
    module_dir = directory / "rl_module" / module_id
    weights = ckpt.load_tensors(module_dir / ckpt.WEIGHTS_FILE, "module weights")
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(
            f"`{module_dir / ckpt.WEIGHTS_FILE}` does not fit this algorithm's module "
            f"(different model config or spaces?): {e}"
        ) from None
    state = ckpt.read_json(directory / "learner_state.json", "Learner state")
    tensors = ckpt.load_tensors(directory / "optimizer.safetensors", "optimizer state")
    return weights, tensors, state
