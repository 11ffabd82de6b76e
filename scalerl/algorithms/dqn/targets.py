"""The targets of value-based learning, as the papers write them.

    n-step double-Q (van Hasselt et al. 2016):
        y = R^(n) + gamma^n (1 - done) Q_target(s', argmax_a Q_online(s', a))
    C51 (Bellemare et al. 2017): project the distribution of R^(n) + gamma^n z_j (z_j the
        atoms of Z_target(s', a*)) back onto the fixed atoms [v_min, v_max]
    R2D2's value rescaling (Kapturowski et al. 2019, from Pohlen et al. 2018):
        h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x,  and its closed-form inverse

Each function takes the n-step return `rewards` (R^(n)), the `discounts` gamma^n' of the
steps actually taken, and `terminateds` (no bootstrap past a termination).
"""

from __future__ import annotations

import torch


def q_targets(
    q_next_target: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminateds: torch.Tensor,
    q_next_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = R + gamma^n (1 - done) Q_target(s', a*), [B].

    q_next_*: [B, num_actions]. With `q_next_online` (double Q) a* is the online network's
    greedy action, evaluated by the target network; without it a* = argmax Q_target.
    """
    chooser = q_next_target if q_next_online is None else q_next_online
    a_star = chooser.argmax(dim=-1, keepdim=True)
    q_next = q_next_target.gather(-1, a_star).squeeze(-1)
    return rewards + discounts * (1.0 - terminateds.float()) * q_next


def c51_target_probs(
    next_probs: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminateds: torch.Tensor,
    v_min: float,
    v_max: float,
) -> torch.Tensor:
    """Project T z_j = R + gamma^n (1 - done) z_j, with probabilities `next_probs` [B, K]
    (Z_target(s', a*)), onto the atoms z = linspace(v_min, v_max, K): [B, K].

    Each shifted atom splits its probability between its two neighbouring atoms in
    proportion to closeness (Algorithm 1 of the C51 paper).
    """
    B, K = next_probs.shape
    atoms = torch.linspace(v_min, v_max, K, device=next_probs.device)
    delta_z = (v_max - v_min) / (K - 1)
    not_done = 1.0 - terminateds.float()
    tz = (rewards[:, None] + (discounts * not_done)[:, None] * atoms[None, :]).clamp(v_min, v_max)
    b = (tz - v_min) / delta_z  # fractional atom index, in [0, K - 1]
    lower, upper = b.floor().long(), b.ceil().long()
    # When b is an integer, lower == upper: give it all the mass (the paper's "l = u" fix).
    lower_weight = (upper.float() - b) + (lower == upper).float()
    upper_weight = b - lower.float()
    target = torch.zeros_like(next_probs)
    target.scatter_add_(1, lower, next_probs * lower_weight)
    target.scatter_add_(1, upper, next_probs * upper_weight)
    return target


def value_rescale(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x."""
    return torch.sign(x) * (torch.sqrt(x.abs() + 1.0) - 1.0) + eps * x


def inverse_value_rescale(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """h^-1(x) = sign(x) (((sqrt(1 + 4 eps (|x| + 1 + eps)) - 1) / (2 eps))^2 - 1).

    The root is computed as 2 (|x| + 1 + eps) / (sqrt(1 + 4 eps (|x| + 1 + eps)) + 1), the
    same value without the cancellation of sqrt(1 + z) - 1 (a 1e-5 relative error in float32)."""
    a = x.abs() + 1.0 + eps
    root = 2.0 * a / (torch.sqrt(1.0 + 4.0 * eps * a) + 1.0)
    return torch.sign(x) * (root.pow(2) - 1.0)
