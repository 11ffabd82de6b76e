"""Generalized Advantage Estimation (Schulman et al. 2016) over time-major fragments."""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    gamma: float,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GAE(gamma, lambda) for arrays of shape [T, N] (time, env).

    `next_values[t]` is V(s_{t+1}): the value of the observation after step t. At a
    truncation it must be the value of the episode's final observation (the env was
    cut off, the return goes on), at a termination it is ignored (the return ends).

        delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    Returns (advantages, value_targets = advantages + values).
    """
    not_term = 1.0 - terminateds.astype(np.float32)
    not_done = 1.0 - (terminateds | truncateds).astype(np.float32)
    deltas = rewards + gamma * next_values * not_term - values
    advantages = np.zeros_like(deltas, dtype=np.float32)
    last = np.zeros(deltas.shape[1:], dtype=np.float32)
    for t in range(len(deltas) - 1, -1, -1):
        last = deltas[t] + gamma * lambda_ * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + values


def next_values_for(
    values: np.ndarray,
    bootstrap_values: np.ndarray,
    trunc_index: np.ndarray,
    trunc_values: np.ndarray,
) -> np.ndarray:
    """Build V(s_{t+1}) for a [T, N] fragment.

    values: V(s_t) [T, N]; bootstrap_values: V of the observation after the fragment [N];
    trunc_index: (t, n) of each truncated episode end [K, 2], trunc_values: V of the
    final observations of those episodes [K].
    """
    next_values = np.concatenate([values[1:], bootstrap_values[None]], axis=0)
    if len(trunc_index):
        next_values[trunc_index[:, 0], trunc_index[:, 1]] = trunc_values
    return next_values
