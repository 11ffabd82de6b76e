"""The SAC learner: three optimizers (actor, critic, alpha), target critics updated by Polyak
averaging, and one backward pass per update.

Parameters of each optimizer are views into its flat buffer (`core/optim.py`), and the
target critics' parameters are views into one more, laid out as the critic optimizer's:
theta' <- tau theta + (1 - tau) theta' is then a single `lerp_` over the whole buffer.
The checkpoint holds the three optimizers' moments, log alpha and the target critics
(unlike DQN's, which restarts its target from the weights): with tau = 0.005 the targets
trail the critics by hundreds of updates, so a restored run resumes exactly.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from scalerl.algorithms.sac.default_sac_rl_module import DefaultSACTorchRLModule
from scalerl.algorithms.sac.manual_gradients import sac_gradients, supports_manual_gradients
from scalerl.algorithms.sac.sac_loss import auto_target_entropy, sac_losses
from scalerl.core.columns import Columns
from scalerl.core.fast_gradients import register_fast_gradient
from scalerl.core.learner import Learner
from scalerl.core.optim import Adam, flatten_parameters
from scalerl.utils.schedules import Scheduler

OPTIMIZERS = ("actor", "critic", "alpha")
# The replayed columns the losses read (`utils.batch_schema.TRANSITIONS`).
BATCH_COLUMNS = (
    Columns.OBS,
    Columns.ACTIONS,
    Columns.REWARDS,
    Columns.NEXT_OBS,
    Columns.TERMINATEDS,
    Columns.DISCOUNTS,
    Columns.WEIGHTS,
)


def resolve_target_entropy(setting: str | float, module: Any) -> float:
    """H_target: the number given, or "auto" (-dim(A) for Box, 0.98 log |A| for Discrete)."""
    if setting != "auto":
        return float(setting)
    if module.discrete:
        return auto_target_entropy(num_actions=module.num_actions)
    return auto_target_entropy(action_dim=module.action_dim)


class SACLearner(Learner):
    """The SAC learner: critic, actor and alpha losses with one Adam each, and Polyak-averaged
    target critics.
    """

    one_step_per_batch = True

    def configure_optimizers(self) -> None:
        cfg, module = self.config, self.module
        self.lr_schedules = {
            "actor": Scheduler(cfg.actor_lr),
            "critic": Scheduler(cfg.critic_lr),
            "alpha": Scheduler(cfg.alpha_lr),
        }
        self.log_alpha = torch.nn.Parameter(
            torch.tensor(math.log(cfg.initial_alpha), device=self.device)
        )
        params = {
            "actor": module.actor_parameters(),
            "critic": module.critic_parameters(),
            "alpha": [self.log_alpha],
        }
        self.optimizers = {
            name: Adam(params[name], lr=self.lr_schedules[name].value(0)) for name in OPTIMIZERS
        }
        self.target_qf = copy.deepcopy(module.qf).requires_grad_(False)
        self.target_params = flatten_parameters(self.target_qf.parameters())
        if self.target_params.shape != self.optimizers["critic"].flat_param.shape:
            raise ValueError(
                f"{type(module).__name__}.critic_parameters() must be the parameters of `qf`."
            )
        self.target_entropy = resolve_target_entropy(cfg.target_entropy, module)
        self.last_target_update = 0

    def before_update(self, timestep: int) -> dict[str, Any]:
        """The three learning rates from their schedules."""
        for name, opt in self.optimizers.items():
            opt.lr = self.lr_schedules[name].value(timestep)
        return self.current_lrs()

    def prepare_batch(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """The columns the losses read, as tensors."""
        return {k: self.to_tensors(batch[k]) for k in BATCH_COLUMNS if k in batch}

    def compute_losses(self, *, batch: dict[str, Any], fwd_out: dict[str, Any]) -> dict:
        """{"critic": J_Q, "actor": J_pi, "alpha": J_alpha} (`sac_losses`): each reaches only
        its own optimizer's parameters, so one backward pass serves all three."""
        losses, td_errors, stats = sac_losses(
            self.module,
            self.target_qf,
            batch,
            self.log_alpha,
            self.target_entropy,
            pi_inputs=fwd_out.get(Columns.ACTION_DIST_INPUTS),
        )
        self.log_metrics(**stats)
        self.log_per_sample(td_error=td_errors)
        return losses

    def after_update(self, batch: dict[str, Any], timestep: int) -> dict[str, Any]:
        """Polyak-update the target critics when due; report alpha and the entropy target."""
        if timestep - self.last_target_update >= self.config.target_network_update_freq:
            self.update_target()
            self.last_target_update = timestep
        return {
            "log_alpha_value": float(self.log_alpha.detach()),
            "target_entropy": self.target_entropy,
        }

    @torch.no_grad()
    def update_target(self) -> None:
        """theta' <- tau theta + (1 - tau) theta', over the critics' flat buffer at once."""
        self.target_params.lerp_(self.optimizers["critic"].flat_param, float(self.config.tau))

    def current_lrs(self) -> dict[str, float]:
        """The current learning rates: {"curr_actor_lr", "curr_critic_lr", "curr_alpha_lr"}."""
        return {f"curr_{name}_lr": opt.lr for name, opt in self.optimizers.items()}

    # -- state ----------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {
            f"{name}/{k}": v
            for name, opt in self.optimizers.items()
            for k, v in opt.state_tensors().items()
        }
        tensors["log_alpha"] = self.log_alpha.detach().reshape(1)
        tensors["target_qf"] = self.target_params
        return tensors

    def optimizer_hyperparameters(self) -> dict:
        return {name: opt.hyperparameters() for name, opt in self.optimizers.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], hyper: dict) -> None:
        expected = set(self.state_tensors())
        if set(tensors) != expected:
            raise ValueError(
                f"SAC learner state has tensors {sorted(tensors)}, expected {sorted(expected)}"
            )
        for name, opt in self.optimizers.items():
            prefix = f"{name}/"
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            opt.load_state(own, hyper[name])
        if tensors["target_qf"].shape != self.target_params.shape:
            raise ValueError(
                f"target critics have {tensors['target_qf'].numel()} parameters, the module's "
                f"critics {self.target_params.numel()}"
            )
        with torch.no_grad():
            self.target_params.copy_(tensors["target_qf"])
            self.log_alpha.copy_(tensors["log_alpha"].reshape(()))

    def get_extra_state(self) -> dict:
        return {**super().get_extra_state(), "last_target_update": self.last_target_update}

    def set_extra_state(self, state: dict) -> None:
        """Restore the RNG and the step of the last target-network update."""
        super().set_extra_state(state)
        self.last_target_update = int(state.get("last_target_update", 0))


def sac_fast_gradient(learner: SACLearner, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """`sac_losses`' gradients written out (`manual_gradients.sac_gradients`), into the
    three optimizers' `.grad`; the losses (for the non-finite guard) and metrics logged as
    `compute_losses` would."""
    td_errors, stats = sac_gradients(
        learner.module, learner.target_qf, batch, learner.log_alpha, learner.target_entropy
    )
    learner.log_metrics(**stats)
    learner.log_per_sample(td_error=td_errors)
    return {
        "critic": stats["qf_loss"],
        "actor": stats["policy_loss"],
        "alpha": stats["alpha_loss"],
    }


# Measured 1.31x end to end on SAC Pendulum-v1 (docs/design.md, "Learning"): kept.
register_fast_gradient(
    SACLearner,
    DefaultSACTorchRLModule,
    sac_fast_gradient,
    supports=lambda learner: supports_manual_gradients(learner.module),
)
