"""Learner: one module, its optimizer(s), and the update loop every algorithm shares.

A learner is its loss. `Learner.update(batch, timestep)` runs the loop below; an algorithm's
learner supplies `compute_loss_for_module` (RLlib's name and signature) and, where it needs
them, the hooks around it:

    update(batch, timestep)
        metrics = before_update(timestep)            # schedules: learning rate(s), coefficients
        batch = prepare_batch(batch)                 # numpy -> tensors (PPO: GAE over the batch)
        for mb in train_batches(batch):              # minibatches x num_epochs, or the whole
            losses = fast path, or                   #   replayed batch once
                fwd_out = forward_train(mb)          # module.forward_train
                compute_losses(mb, fwd_out)          # {optimizer: compute_loss_for_module(...)}
                backward
            apply_gradients(optimizer) per loss      # all-reduce, clip, non-finite guard, step
        metrics += mean over minibatches of log_metrics(...)
        metrics += after_update(batch, timestep)     # targets, KL coefficient, extra metrics
        return metrics + log_per_sample(...) arrays  # e.g. TD errors for the priorities

Hand-written gradients are an opt-in fast path registered for one exact (learner class,
module class) pair (`core/fast_gradients.py`): a subclass of either, or an instance that
overrides the loss, trains through autograd on its own `compute_loss_for_module`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.columns import Columns
from scalerl.core.fast_gradients import FastGradient, fast_gradient_for
from scalerl.core.optim import Adam
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError, NonFiniteUpdateError
from scalerl.utils.nested import first_leaf, index, map_structure
from scalerl.utils.schedules import Scheduler

# Updates with a NaN/inf gradient are skipped (weights and optimizer state untouched); this
# many in a row raise a NonFiniteUpdateError naming the module and the loss terms.
MAX_NON_FINITE_UPDATES_IN_A_ROW = 3
DEFAULT_OPTIMIZER = "default_optimizer"


class Learner:
    """Owns the trainable module and its optimizer(s) and runs the update loop; subclasses
    supply the loss (`compute_loss_for_module`) and the hooks around it (module docstring).
    """

    # The module this learner trains (set by `ModuleLearners`), named in errors.
    module_id: str = DEFAULT_MODULE_ID
    # Minibatches per epoch, when a data-parallel group fixes it (see `minibatch_bounds`).
    fixed_steps_per_epoch: int | None = None
    # True: one optimizer step on the whole batch (replay learners); False: `num_epochs`
    # passes over the batch in minibatches of `minibatch_size` (on-policy learners).
    one_step_per_batch: bool = False

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
        self.num_non_finite_updates_skipped = 0  # lifetime (reported in the learner results)
        self._non_finite_in_a_row: dict[str, int] = {}  # per optimizer
        self._step_metrics: dict[str, Any] = {}  # what the current step logged
        self._per_sample: dict[str, torch.Tensor] = {}

    def configure_optimizers(self) -> None:
        """Build the optimizer(s): one Adam over all parameters with the `lr` schedule.

        Subclasses with several optimizers (SAC: actor, critic, alpha) override this (setting
        `self.optimizers`, name -> Adam, and `compute_losses`) and the state hooks
        `state_tensors`, `optimizer_hyperparameters`, `load_state_tensors`.
        """
        self.optimizer = Adam(self.module.parameters(), lr=self._lr0(), eps=1e-5)
        self.optimizers = {DEFAULT_OPTIMIZER: self.optimizer}
        self.lr_schedule = Scheduler(self.config.lr)

    def _lr0(self) -> float:
        return Scheduler(self.config.lr).value(0)

    # -- the update loop -----------------------------------------------------------------
    def update(self, batch: Any, timestep: int) -> dict[str, Any]:
        """Train the module on `batch` and return the metrics (the loop in the module
        docstring; subclasses change it through its hooks, not by overriding this).

        Args:
            batch: A sample in the batch schema (numpy columns), for this learner's module.
            timestep: Lifetime env steps sampled, for the learning-rate and other schedules.

        Returns:
            Metric name -> float: what the loss logged, averaged over the minibatches, each
            optimizer's gradient norm, `num_module_steps_trained`,
            `num_non_finite_updates_skipped` and the hooks' metrics; plus the per-sample
            arrays the loss logged (replay learners: the TD errors, for the priorities).
        """
        metrics = self.before_update(timestep)
        tensors = self.prepare_batch(batch)
        fast = self.fast_gradient()
        rows, trained = [], 0
        for mb in self.train_batches(tensors):
            rows.append(self.train_step(mb, fast))
            trained += len(first_leaf(mb))
        metrics.update(self.mean_metrics(rows))
        metrics["num_module_steps_trained"] = trained
        metrics.update(self.after_update(tensors, timestep))
        metrics["num_non_finite_updates_skipped"] = self.num_non_finite_updates_skipped
        per_sample, self._per_sample = self._per_sample, {}
        return {**metrics, **{k: v.detach().cpu().numpy() for k, v in per_sample.items()}}

    def before_update(self, timestep: int) -> dict[str, Any]:
        """Set what the schedules say at `timestep`; return it as metrics (the base class:
        the learning rate, `curr_lr`)."""
        return {"curr_lr": self.set_lr(timestep)}

    def prepare_batch(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """The train batch as tensors on this learner's device, once per update (PPO adds
        its advantages and value targets here). The base class: every column but the
        replay buffer's indices."""
        return {k: self.to_tensors(v) for k, v in batch.items() if k != Columns.INDICES}

    def train_batches(self, batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The batches of the optimizer steps: the whole batch once (`one_step_per_batch`),
        else `num_epochs` shuffled passes in minibatches of `minibatch_size(batch)`."""
        if self.one_step_per_batch:
            return iter((batch,))
        return self.minibatches(batch, self.minibatch_size(batch), self.config.num_epochs)

    def minibatch_size(self, batch: dict[str, Any]) -> int:
        """Rows per minibatch: the `minibatch_size` setting."""
        return self.config.minibatch_size

    def forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The training forward pass whose outputs the loss reads: `module.forward_train`."""
        return self.module.forward_train(batch)

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """The loss to minimize on one (mini)batch: an algorithm's learner implements this.

        Log the loss terms with `log_metrics` (averaged over minibatches) and per-sample
        outputs with `log_per_sample`.

        Args:
            module_id: The module trained (`self.module_id`).
            config: That module's config.
            batch: The (mini)batch, tensors.
            fwd_out: `forward_train(batch)`.

        Returns:
            A scalar tensor: the loss of the default optimizer.
        """
        raise NotImplementedError

    def compute_losses(self, *, batch: dict[str, Any], fwd_out: dict[str, Any]) -> dict:
        """{optimizer name: loss}: `compute_loss_for_module` for the default optimizer.

        Learners with several optimizers (SAC: actor, critic, alpha) override this. One
        backward pass of the losses' sum fills every gradient, so each loss must reach only
        its own optimizer's parameters (detach the rest), as SAC's do.
        """
        loss = self.compute_loss_for_module(
            module_id=self.module_id, config=self.config, batch=batch, fwd_out=fwd_out
        )
        return {DEFAULT_OPTIMIZER: loss}

    def after_update(self, batch: dict[str, Any], timestep: int) -> dict[str, Any]:
        """Work after the optimizer steps (target networks, adaptive coefficients); return
        extra metrics. The base class: none."""
        return {}

    def log_metrics(self, **values: torch.Tensor | float) -> None:
        """Record scalar metrics of the current optimizer step (tensors stay on the device
        until the update's end; the update returns their means over the steps)."""
        self._step_metrics.update(values)

    def log_per_sample(self, **values: torch.Tensor) -> None:
        """Record per-sample outputs (e.g. TD errors); `update` returns them as numpy arrays
        (from the last optimizer step)."""
        self._per_sample.update(values)

    def fast_gradient(self) -> FastGradient | None:
        """The registered fast path for exactly this learner's and module's classes, unless
        this instance overrides the loss or the path's `supports` check says no."""
        return fast_gradient_for(self)

    def train_step(self, batch: dict[str, Any], fast: FastGradient | None = None) -> dict:
        """One step of every optimizer on `batch`: the gradients (`fast`, or autograd on
        `compute_losses`), then `apply_gradients` per optimizer. Returns the step's metrics."""
        self._step_metrics = {}
        if fast is not None:
            losses = fast(self, batch)  # writes every .grad
        else:
            losses = self.compute_losses(batch=batch, fwd_out=self.forward_train(batch))
            for optimizer in self.optimizers.values():
                optimizer.zero_grad()
            total = None
            for loss in losses.values():
                total = loss if total is None else total + loss
            total.backward()
        metrics = self._step_metrics
        for name, loss in losses.items():
            terms = {**metrics, "total_loss": loss.detach()}
            norm = self.apply_gradients(self.optimizers[name], terms, name)
            metrics[f"gradients_{name}_global_norm"] = norm
        return metrics

    # -- helpers for subclasses -----------------------------------------------------
    def set_lr(self, timestep: int) -> float:
        """Set the optimizer's learning rate from the `lr` schedule at `timestep`; return it."""
        lr = self.lr_schedule.value(timestep)
        self.optimizer.lr = lr
        return lr

    def apply_gradients(
        self,
        optimizer: Adam | None = None,
        loss_terms: dict[str, torch.Tensor] | None = None,
        name: str = DEFAULT_OPTIMIZER,
    ) -> torch.Tensor:
        """Clip the gradients in the parameters' `.grad` and take one optimizer step.

        Returns the gradient's global norm before clipping (a tensor: converting it to a
        float every minibatch would cost more than it is worth). `optimizer` defaults to
        `self.optimizer`.

        A NaN/inf gradient norm, or total loss (`loss_terms["total_loss"]`), skips the step
        (weights and optimizer state stay as they were) and counts it in
        `num_non_finite_updates_skipped`; after
        `MAX_NON_FINITE_UPDATES_IN_A_ROW` in a row a NonFiniteUpdateError names the module,
        the optimizer and the non-finite `loss_terms`. Data-parallel learners decide alike:
        they test the all-reduced gradient, into which each adds its `total_loss * 0`.
        """
        optimizer = optimizer or self.optimizer
        grad = optimizer.flat_grad
        # Data-parallel learners: average the gradients first, so that clipping and the
        # step see the same global gradient on every learner and their weights stay equal.
        total = (loss_terms or {}).get("total_loss")
        world = self.world_size()
        if world > 1:
            if total is not None:  # a NaN/inf loss on any learner: NaN for all, all skip
                grad.add_(total.detach() * 0)
            torch.distributed.all_reduce(grad)
            grad.div_(world)
        norm = grad.norm()
        # `.item()` and `math.isfinite`: 0.3 us on CPU, where torch.isfinite costs 4-7 us;
        # on a GPU this is a host sync per optimizer step.
        if not (math.isfinite(norm.item()) and (total is None or math.isfinite(total.item()))):
            self._skip_non_finite(norm, loss_terms, name)
            return norm
        self._non_finite_in_a_row[name] = 0
        clip = self.config.grad_clip
        if clip is not None:
            if self.config.grad_clip_by == "value":
                grad.clamp_(-clip, clip)
            else:
                grad.mul_((clip / (norm + 1e-6)).clamp(max=1.0))
        optimizer.step()
        return norm

    def _skip_non_finite(
        self, norm: torch.Tensor, loss_terms: dict[str, torch.Tensor] | None, name: str
    ) -> None:
        self.num_non_finite_updates_skipped += 1
        in_a_row = self._non_finite_in_a_row[name] = self._non_finite_in_a_row.get(name, 0) + 1
        if in_a_row < MAX_NON_FINITE_UPDATES_IN_A_ROW:
            return
        bad = [
            f"{k}={float(v.detach().float().mean()):g}"
            for k, v in (loss_terms or {}).items()
            if isinstance(v, torch.Tensor) and v.numel() > 0 and not torch.isfinite(v).all()
        ]
        culprit = (
            f"non-finite loss terms: {', '.join(bad)}"
            if bad
            else "the loss terms are finite but the gradient is not (an overflow or 0 * inf "
            "in the backward pass)"
        )
        raise NonFiniteUpdateError(
            f"Module `{self.module_id}`: {MAX_NON_FINITE_UPDATES_IN_A_ROW} updates in a row had "
            f"a non-finite loss or gradient (gradient norm {float(norm)}, optimizer `{name}`; "
            f"{culprit}); each "
            f"was skipped ({self.num_non_finite_updates_skipped} in all). Look for NaN/inf in "
            "the training data (`config.environment(on_nonfinite=...)`), a learning rate that "
            "is too high, or a custom loss or module that divides by zero or takes log(0)."
        )

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
        """(start, end) of each minibatch within one epoch's (shuffled) batch.

        A data-parallel learner whose group fixed `fixed_steps_per_epoch` (shards of
        unequal size: every learner must all-reduce equally often) splits its shard into
        that many minibatches of about equal size instead."""
        k = self.fixed_steps_per_epoch
        if k is not None:
            ends = np.cumsum([len(part) for part in np.array_split(np.arange(size), k)])
            return list(zip([0, *ends[:-1].tolist()], ends.tolist()))
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
        # Arrays from Ray's object store are read-only views: torch needs its own copy.
        return map_structure(
            lambda x: torch.from_numpy(x if x.flags.writeable else x.copy()).to(self.device),
            arrays,
        )

    @staticmethod
    def mean_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
        """Means over minibatches of scalar tensors (converted to floats together, once per
        update) and numbers."""
        if not rows:
            return {}
        keys = [k for k, v in rows[0].items() if isinstance(v, torch.Tensor)]
        out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in keys}
        if len(rows) == 1 and keys:  # one step (replay learners): no mean to take
            out.update(zip(keys, torch.stack([rows[0][k].detach() for k in keys]).tolist()))
        elif keys:
            means = torch.stack([torch.stack([r[k].detach() for k in keys]) for r in rows])
            out.update(zip(keys, means.float().mean(0).tolist()))
        return {k: out[k] for k in rows[0]}

    # -- weights and state ---------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """The module's weights as numpy array copies, keyed by state-dict name."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load module weights (tensors or numpy arrays, keyed by state-dict name)."""
        self.module.set_state(weights)

    def get_extra_state(self) -> dict:
        """JSON-able state beyond weights and optimizer (subclasses extend)."""
        return {"rng": self.rng.bit_generator.state}

    def set_extra_state(self, state: dict) -> None:
        """Restore the state that `get_extra_state` returned (the base class: the RNG)."""
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
