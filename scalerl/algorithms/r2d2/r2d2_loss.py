"""The R2D2 loss on replayed sequences (Kapturowski et al. 2019), as the paper writes it.

A batch holds B sequences of L steps (see `utils.replay_buffers.sequence_buffer`): obs
[B, L + 1], actions, rewards, terminateds, mask [B, L], burn_in [B], state_in, prev_action,
prev_reward [B] and, from prioritized replay, importance weights [B].

    unroll   Q(o_0..o_L) from the stored state (zero with `zero_init_states`); the first
             burn_in steps only produce the start state (no loss, no gradient into them)
    targets  for each step t: n' = min(n, l - t) steps, R = sum_{k<n'} gamma^k r_{t+k},
             y_t = h(R + gamma^n' (1 - done) h^-1(Q'(o_{t+n'}, argmax_a Q(o_{t+n'}, a))))
    loss     L = sum_i w_i sum_t m_it huber(Q(o_it, a_it) - y_it) / sum_it m_it,
             m = valid and past the burn-in ("trained" steps)

h is the value rescaling h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x (`use_h_function`).
Steps near a sequence's end use fewer reward steps n' and bootstrap from o_{t+n'}, which
is why obs holds L + 1 steps. Returns the loss, |delta| [B, L] and the trained mask, from
which the buffer forms the sequence priorities.
"""

from __future__ import annotations

from typing import Any

import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from scalerl.algorithms.dqn.targets import inverse_value_rescale, q_targets, value_rescale
from scalerl.core.columns import Columns
from scalerl.utils.nested import map_structure


def sequence_n_step(
    rewards: torch.Tensor, terminateds: torch.Tensor, mask: torch.Tensor, n: int, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """n-step returns inside sequences [B, L]: (R, gamma^n', terminated, t + n').

    n' = min(n, l - t) with l the sequence's valid length; a sequence never crosses an
    episode end, so a termination can only be its last valid step."""
    L = rewards.shape[1]
    t = torch.arange(L, device=rewards.device)
    steps = (mask.sum(1, keepdim=True) - t).clamp(min=0, max=n)
    r = torch.where(mask, rewards, 0.0)
    done = mask & terminateds.bool()
    returns = torch.zeros_like(r)
    terminated = torch.zeros_like(done)
    for k in range(n):
        returns = returns + gamma**k * torch.nn.functional.pad(r[:, k:], (0, k))
        terminated = terminated | torch.nn.functional.pad(done[:, k:], (0, k))
    return returns, gamma ** steps.to(r.dtype), terminated, t + steps


def r2d2_targets(
    q_target: torch.Tensor,
    rewards: torch.Tensor,
    terminateds: torch.Tensor,
    mask: torch.Tensor,
    *,
    n_step: int,
    gamma: float,
    q_online: torch.Tensor | None = None,
    h_epsilon: float | None = 1e-3,
) -> torch.Tensor:
    """y [B, L] from the target network's Q over o_0..o_L, `q_target` [B, L + 1, A], and
    (double Q) the online network's, `q_online`; `h_epsilon=None`: no value rescaling."""
    returns, discounts, terminated, boot = sequence_n_step(
        rewards, terminateds, mask, n_step, gamma
    )
    B, L = rewards.shape
    A = q_target.shape[-1]
    index = boot[..., None].expand(B, L, A)

    def at_boot(q: torch.Tensor) -> torch.Tensor:
        return q.gather(1, index).reshape(B * L, A)

    q_next = at_boot(q_target)
    if h_epsilon is not None:
        q_next = inverse_value_rescale(q_next, h_epsilon)  # argmax is unchanged: h is monotone
    y = q_targets(
        q_next,
        returns.reshape(-1),
        discounts.reshape(-1),
        terminated.reshape(-1),
        None if q_online is None else at_boot(q_online),
    )
    if h_epsilon is not None:
        y = value_rescale(y, h_epsilon)
    return y.reshape(B, L)


def sequence_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The module's inputs at o_0..o_L: obs, a_{t-1} and r_{t-1} [B, L + 1]."""

    def prev(first: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        return torch.cat([first[:, None], steps], dim=1)

    return {
        Columns.OBS: batch[Columns.OBS],
        Columns.PREV_ACTIONS: map_structure(
            prev, batch[Columns.SEQ_PREV_ACTION], batch[Columns.ACTIONS]
        ),
        Columns.PREV_REWARDS: prev(batch[Columns.SEQ_PREV_REWARD], batch[Columns.REWARDS].float()),
    }


def unroll_q(module: Any, inputs: dict, state: dict, burn_in: torch.Tensor) -> torch.Tensor:
    """Q [B, L + 1, A] from `state`. Sequences with a burn-in use it only to produce the
    start state of the rest: the state after it is detached (the episode-start ones, with
    burn_in 0, keep the gradient through all their steps)."""
    b = int(burn_in.max()) if burn_in.numel() else 0
    if b == 0:
        return module.compute_q_values({**inputs, Columns.STATE_IN: state})[QF_PREDS]

    def part(s: slice) -> dict:
        return {k: map_structure(lambda x: x[:, s], v) for k, v in inputs.items()}

    head = module.compute_q_values({**part(slice(0, b)), Columns.STATE_IN: state})
    keep = burn_in == 0
    start = {
        k: torch.where(keep.reshape(-1, *[1] * (v.ndim - 1)), v, v.detach())
        for k, v in head[Columns.STATE_OUT].items()
    }
    tail = module.compute_q_values({**part(slice(b, None)), Columns.STATE_IN: start})
    return torch.cat([head[QF_PREDS], tail[QF_PREDS]], dim=1)


def r2d2_loss(
    module: Any,
    target_module: Any,
    batch: dict[str, Any],
    *,
    n_step: int,
    gamma: float,
    double_q: bool = True,
    h_epsilon: float | None = 1e-3,
    zero_init_states: bool = False,
    huber_delta: float = 1.0,
    q: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, |delta| [B, L], trained mask [B, L], stats) of `module` on `batch`; `q`: the
    module's unrolled Q [B, L + 1, A] (`unroll_q`), if the caller has it."""
    actions = batch[Columns.ACTIONS].long() - module.action_start
    mask = batch[Columns.SEQ_MASK].bool()
    B, L = mask.shape
    state = batch[Columns.STATE_IN]
    if zero_init_states:
        state = {
            k: v.expand(B, *v.shape).to(mask.device) for k, v in module.get_initial_state().items()
        }
    inputs = sequence_inputs(batch)
    burn_in = batch[Columns.BURN_IN].long()
    if q is None:
        q = unroll_q(module, inputs, state, burn_in)
    with torch.no_grad():
        q_target = target_module.compute_q_values({**inputs, Columns.STATE_IN: state})[QF_PREDS]
        y = r2d2_targets(
            q_target,
            batch[Columns.REWARDS].float(),
            batch[Columns.TERMINATEDS],
            mask,
            n_step=n_step,
            gamma=gamma,
            q_online=q.detach() if double_q else None,
            h_epsilon=h_epsilon,
        )
    q_taken = q[:, :L].gather(-1, actions[..., None]).squeeze(-1)
    trained = mask & (torch.arange(L, device=mask.device)[None, :] >= burn_in[:, None])
    per_step = torch.nn.functional.huber_loss(q_taken, y, reduction="none", delta=huber_delta)
    weights = batch.get(Columns.WEIGHTS)
    if weights is not None:
        per_step = per_step * weights[:, None]
    count = trained.sum().clamp(min=1)
    loss = per_step[trained].sum() / count
    td = (q_taken - y).detach().abs()
    return (
        loss,
        td,
        trained,
        {
            "qf_loss": loss.detach(),
            "qf_mean": q_taken.detach()[trained].sum() / count,
            "td_error_mean": td[trained].sum() / count,
            "num_trained_steps": trained.sum(),
        },
    )
