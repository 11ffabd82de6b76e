"""The on-policy learner's batch: GAE advantages and value targets over a sampled rollout.

Shared by PPO, PG and A2C: `prepare_batch` turns a [T, N] fragment into the train batch
(advantages standardized over it), the forward pass adds V(s), and sequence batches of a
recurrent module are reduced to their valid steps before the loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scalerl.core.learner import Learner
from scalerl.core.rl_module import Columns
from scalerl.utils.advantages import compute_gae, next_values_for
from scalerl.utils.nested import index, map_structure
from scalerl.utils.sequences import SequenceLayout, recurrent_values, sequence_batch

TRAIN_COLUMNS = (
    Columns.OBS,
    Columns.ACTIONS,
    Columns.ACTION_LOGP,
    Columns.ACTION_DIST_INPUTS,
    Columns.ADVANTAGES,
    Columns.VALUE_TARGETS,
)
# Per-step columns of a train batch (those that sequences pad and the loss mask selects).
TRAIN_STEP_COLUMNS = (*TRAIN_COLUMNS, Columns.ACTION_LOGP, Columns.VF_PREDS)


class OnPolicyLearner(Learner):
    """A learner of rollouts: GAE (`config.gamma`, `config.lambda_`) once per update, then
    `num_epochs` of minibatches; subclasses supply `compute_loss_for_module`."""

    def compute_advantages(self, fragment: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add advantages and value targets to a [T, N] fragment; return it as the train
        batch: flattened to [T*N], or cut into padded sequences [S, L] for a stateful module."""
        T, N = fragment[Columns.REWARDS].shape
        if self.module.is_stateful():
            values, bootstrap_values, trunc_values = recurrent_values(self._values, fragment)
        else:
            all_obs = map_structure(
                lambda o, b, t: np.concatenate([o.reshape(T * N, *o.shape[2:]), b, t]),
                fragment[Columns.OBS],
                fragment[Columns.BOOTSTRAP_OBS],
                fragment[Columns.TRUNC_OBS],
            )
            v = self._values({Columns.OBS: all_obs})
            values, bootstrap_values, trunc_values = (
                v[: T * N].reshape(T, N),
                v[T * N : T * N + N],
                v[T * N + N :],
            )
        next_values = next_values_for(
            values, bootstrap_values, fragment[Columns.TRUNC_INDEX], trunc_values
        )
        advantages, targets = compute_gae(
            fragment[Columns.REWARDS],
            values,
            next_values,
            fragment[Columns.TERMINATEDS],
            fragment[Columns.TRUNCATEDS],
            self.config.gamma,
            self.gae_lambda(),
        )
        columns = {k: fragment[k] for k in TRAIN_COLUMNS if k in fragment}
        columns[Columns.ADVANTAGES] = advantages
        columns[Columns.VALUE_TARGETS] = targets
        columns[Columns.VF_PREDS] = values
        # log pi_old(a|s), from the distribution inputs the EnvRunner recorded (arrays from
        # Ray's object store are read-only: copy those, torch wants writable memory).
        flat = {
            k: map_structure(
                lambda x: np.require(x.reshape(T * N, *x.shape[2:]), requirements="W"),
                columns[k],
            )
            for k in (Columns.ACTION_DIST_INPUTS, Columns.ACTIONS)
        }
        dist = self.module.get_train_action_dist_cls()(
            torch.from_numpy(flat[Columns.ACTION_DIST_INPUTS])
        )
        logp = dist.logp(map_structure(torch.from_numpy, flat[Columns.ACTIONS])).numpy()
        columns[Columns.ACTION_LOGP] = logp.reshape(T, N)
        if self.module.is_stateful():
            layout = SequenceLayout.from_starts(fragment[Columns.SEQ_INDEX], T)
            return sequence_batch({**fragment, **columns}, layout, list(columns))
        return {
            k: map_structure(lambda x: x.reshape(T * N, *x.shape[2:]), v)
            for k, v in columns.items()
        }

    def gae_lambda(self) -> float:
        """The lambda of GAE: `config.lambda_` (A2C's n-step returns are lambda = 1)."""
        return self.config.lambda_

    @torch.no_grad()
    def _values(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.module.compute_values(self.to_tensors(batch)).cpu().numpy()

    def prepare_batch(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """GAE over the [T, N] fragment `batch`, advantages standardized over the batch
        (its valid steps), as tensors."""
        flat = self.compute_advantages(batch)
        valid = flat.get(Columns.LOSS_MASK, slice(None))  # sequences: the unpadded steps
        adv = flat[Columns.ADVANTAGES]
        flat[Columns.ADVANTAGES] = (adv - adv[valid].mean()) / (adv[valid].std() + 1e-8)
        return {k: self.to_tensors(v) for k, v in flat.items()}

    def minibatch_size(self, batch: dict[str, Any]) -> int:
        """`minibatch_size` steps; sequence batches: that many steps' worth of sequences."""
        if Columns.LOSS_MASK in batch:
            return max(1, round(self.config.minibatch_size / self.module.max_seq_len))
        return self.config.minibatch_size

    def forward_train(self, batch: dict[str, Any]) -> dict[str, Any]:
        """`forward_train`, with V(s) from the ValueFunctionAPI where the module's training
        forward pass returns none (as RLlib)."""
        fwd_out = self.module.forward_train(batch)
        if Columns.VF_PREDS not in fwd_out:
            fwd_out = {**fwd_out, Columns.VF_PREDS: self.module.compute_values(batch)}
        return fwd_out

    def valid_steps(self, batch: dict[str, Any], fwd_out: dict[str, Any]) -> tuple[dict, dict]:
        """A sequence batch and its forward outputs reduced to the valid (unpadded) steps,
        so the loss is the same per-step mean as for a flat batch."""
        if Columns.LOSS_MASK not in batch:
            return batch, fwd_out
        mask = batch[Columns.LOSS_MASK]
        steps = {k: index(batch[k], mask) for k in TRAIN_STEP_COLUMNS if k in batch}
        out = {
            k: fwd_out[k][mask]
            for k in (Columns.ACTION_DIST_INPUTS, Columns.VF_PREDS)
            if k in fwd_out
        }
        return steps, out

    def after_update(self, batch: dict[str, Any], timestep: int) -> dict[str, Any]:
        """The value function's explained variance (of the targets, by the pre-update
        values) and the steps trained (valid steps x epochs)."""
        targets, values = batch[Columns.VALUE_TARGETS], batch[Columns.VF_PREDS]
        if Columns.LOSS_MASK in batch:
            targets, values = targets[batch[Columns.LOSS_MASK]], values[batch[Columns.LOSS_MASK]]
        explained = 1 - (targets - values).var(unbiased=False) / (
            targets.var(unbiased=False) + 1e-8
        )
        return {
            "vf_explained_var": float(explained),
            "num_module_steps_trained": len(targets) * self.config.num_epochs,
        }
