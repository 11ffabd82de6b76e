"""Learner: one module, its optimizer, and the update step of an algorithm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerl.core.optim import Adam
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError
from scalerl.utils.nested import first_leaf, index, map_structure
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
        self.configure_optimizers()
        self.rng = np.random.default_rng(config.seed)

    def configure_optimizers(self) -> None:
        """Build the optimizer(s): one Adam over all parameters with the `lr` schedule.

        Subclasses with several optimizers (SAC: actor, critic, alpha) override this and
        the state hooks `state_tensors`, `optimizer_hyperparameters`, `load_state_tensors`.
        """
        self.optimizer = Adam(self.module.parameters(), lr=self._lr0(), eps=1e-5)
        self.lr_schedule = Scheduler(self.config.lr)

    def _lr0(self) -> float:
        return Scheduler(self.config.lr).value(0)

    def update(self, batch: Any, timestep: int) -> dict[str, float]:
        raise NotImplementedError

    # -- helpers for subclasses -----------------------------------------------------
    def set_lr(self, timestep: int) -> float:
        lr = self.lr_schedule.value(timestep)
        self.optimizer.lr = lr
        return lr

    def apply_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Backprop `loss`, clip gradients by the configured rule, and take one step.

        Returns the gradient's global norm before clipping (a tensor: converting it to a
        float every minibatch would cost more than it is worth).
        """
        self.optimizer.zero_grad()
        loss.backward()
        return self.apply_gradients()

    def apply_gradients(self, optimizer: Adam | None = None) -> torch.Tensor:
        """Clip the gradients in the parameters' `.grad` and take one optimizer step.

        For updates that write the gradients themselves; returns the global norm before
        clipping, as `apply_loss`. `optimizer` defaults to `self.optimizer`.
        """
        optimizer = optimizer or self.optimizer
        grad = optimizer.flat_grad
        # Data-parallel learners: average the gradients first, so that clipping and the
        # step see the same global gradient on every learner and their weights stay equal.
        world = self.world_size()
        if world > 1:
            torch.distributed.all_reduce(grad)
            grad.div_(world)
        norm = grad.norm()
        clip = self.config.grad_clip
        if clip is not None:
            if self.config.grad_clip_by == "value":
                grad.clamp_(-clip, clip)
            else:
                grad.mul_((clip / (norm + 1e-6)).clamp(max=1.0))
        optimizer.step()
        return norm

    # -- data-parallel helpers (no-ops unless torch.distributed is initialized) ------------
    @staticmethod
    def world_size() -> int:
        """How many learners train this module together (1 without torch.distributed)."""
        dist = torch.distributed
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    def all_reduce_mean(self, value: float) -> float:
        """The mean of a scalar over all learners (for decisions that must agree, e.g. an
        adaptive coefficient driven by a metric); the value itself without torch.distributed."""
        world = self.world_size()
        if world == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / world

    def minibatch_bounds(self, size: int, minibatch_size: int) -> list[tuple[int, int]]:
        """(start, end) of each minibatch within one epoch's (shuffled) batch."""
        return [(s, min(s + minibatch_size, size)) for s in range(0, size, minibatch_size)]

    def minibatches(self, batch: dict[str, torch.Tensor], minibatch_size: int, num_epochs: int):
        """Yield `num_epochs` passes over `batch` in minibatches, reshuffled every epoch.

        Each epoch gathers the whole batch once in a new order; its minibatches are then
        free contiguous slices (one gather per column per minibatch would cost more).
        """
        size = len(first_leaf(batch))
        bounds = self.minibatch_bounds(size, minibatch_size)
        for _ in range(num_epochs):
            epoch = batch
            if self.config.shuffle_batch_per_epoch:
                perm = torch.from_numpy(self.rng.permutation(size)).to(self.device)
                epoch = {k: index(v, perm) for k, v in batch.items()}
            for start, end in bounds:
                yield {k: index(v, slice(start, end)) for k, v in epoch.items()}

    def to_tensors(self, arrays: Any) -> Any:
        """numpy arrays (nested like the spaces) -> tensors on this learner's device."""
        return map_structure(lambda x: torch.from_numpy(x).to(self.device), arrays)

    @staticmethod
    def mean_metrics(rows: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Means over minibatches of scalar tensors, converted to floats once per update."""
        return {k: float(torch.stack([r[k] for r in rows]).mean()) for k in rows[0]}

    # -- weights and state ---------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.module.set_state(weights)

    def get_extra_state(self) -> dict:
        """JSON-able state beyond weights and optimizer (subclasses extend)."""
        return {"rng": self.rng.bit_generator.state}

    def set_extra_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Named tensors of the state beyond the module's weights (`optimizer.safetensors`):
        the Adam moments; subclasses add theirs (e.g. SAC's log alpha and target critic)."""
        return self.optimizer.state_tensors()

    def optimizer_hyperparameters(self) -> dict:
        """JSON-able optimizer state (`learner_state.json`'s "optimizer")."""
        return self.optimizer.hyperparameters()

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], hyper: dict) -> None:
        """The inverse of `state_tensors` and `optimizer_hyperparameters`."""
        self.optimizer.load_state(tensors, hyper)

    def save(self, directory: Path, module_id: str, state_dir: Path | None = None) -> None:
        """The module to `directory/rl_module/<module_id>`, optimizer and learner state to
        `state_dir` (default `directory`; multi-agent checkpoints keep one per module)."""
        state_dir = directory if state_dir is None else state_dir
        self.module._write(directory / "rl_module" / module_id)
        ckpt.save_tensors(state_dir / "optimizer.safetensors", self.state_tensors())
        ckpt.write_json(
            state_dir / "learner_state.json",
            {"optimizer": self.optimizer_hyperparameters(), "extra": self.get_extra_state()},
        )

    def load(self, view: ckpt.CheckpointView, module_id: str) -> None:
        """Restore from the verified learner directory `view` of a checkpoint."""
        self.set_state(*read_learner_files(view, module_id, self.module))

    def set_state(self, weights: dict[str, Any], tensors: dict, learner_state: dict) -> None:
        """Weights, optimizer tensors and the JSON learner state, as `read_learner_files` gives."""
        self.set_weights(weights)
        try:
            self.load_state_tensors(tensors, learner_state["optimizer"])
            self.set_extra_state(learner_state["extra"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"The checkpoint holds a corrupt learner state: {e}") from None


def read_learner_files(
    view: ckpt.CheckpointView, module_id: str, module: RLModule, state_dir: str = ""
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """Read a learner's checkpoint files from the verified learner directory `view` (state
    files under `state_dir` within it); check the weights fit `module` (loading them in)."""
    weights_file = f"rl_module/{module_id}/{ckpt.WEIGHTS_FILE}"
    weights = view.load_tensors(weights_file, "RLModule weights")
    module.load_weights(weights, view.path / weights_file)
    prefix = f"{state_dir}/" if state_dir else ""
    state = view.read_json(f"{prefix}learner_state.json", "Learner state")
    tensors = view.load_tensors(f"{prefix}optimizer.safetensors", "optimizer state")
    return weights, tensors, state
