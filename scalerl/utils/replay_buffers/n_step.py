"""N-step transitions from the EnvRunner's time-major fragments.

RLlib computes n-step returns inside its episode replay buffers
(`EpisodeReplayBuffer.sample(n_step=...)`); here they are computed once per fragment,
before `add`, so the buffers store plain transitions.

For each step t of env e, with n' = the number of steps actually taken (n, fewer when the
episode or the fragment ends first):

    R_t        = sum_{k < n'} gamma^k r_{t+k}
    next_obs   = s_{t+n'}          (for a truncation: the true final obs, `trunc_obs`)
    terminated = 1 if a termination ended the episode within those n' steps
    discount   = gamma^{n'}

so the target is R_t + discount * (1 - terminated) * max_a Q(next_obs, a).

Fragment ends: the last steps (within n of the end) are emitted with n' shortened to the
fragment end, bootstrapping from `bootstrap_obs` (the obs after the last step). This is
exact (the target stays an unbiased n'-step target with its own `discount`), needs no
state carried between fragments, and keeps every env step in the buffer once; the cost
is that those few transitions use fewer than n reward steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils import nested


def n_step_transitions(batch: dict[str, Any], n: int, gamma: float) -> dict[str, Any]:
    """Turn an EnvRunner fragment [T, N] into T * N n-step transitions (time-major order).

    Args:
        batch: `SingleAgentEnvRunner.sample()`'s batch: obs, actions, rewards,
            terminateds, truncateds [T, N, ...]; bootstrap_obs [N, ...]; trunc_index
            [K, 2] of (t, env) and trunc_obs [K, ...] for truncated episodes.
        n: Number of reward steps (1 = ordinary one-step transitions).
        gamma: Discount factor.

    Returns:
        obs, actions, rewards (the n-step return), next_obs, terminateds (float32),
        discounts (gamma^{n'}, float32) and n_steps (n'), each [T * N, ...].
    """
    if n < 1:
        raise ValueError(f"n_step must be >= 1, got {n}.")
    rewards = np.asarray(batch[Columns.REWARDS], dtype=np.float64)
    T, N = rewards.shape
    terms = np.asarray(batch[Columns.TERMINATEDS], dtype=bool)
    dones = terms | np.asarray(batch[Columns.TRUNCATEDS], dtype=bool)

    # s_{t+1} for each (t, e): the next row, the bootstrap obs after the last row, and
    # the real final obs where the episode was truncated (obs[t+1] is then a reset obs).
    def shift(o: np.ndarray, boot: np.ndarray) -> np.ndarray:
        return np.concatenate([o[1:], boot[None]], axis=0)

    next1 = nested.map_structure(shift, batch[Columns.OBS], batch[Columns.BOOTSTRAP_OBS])
    trunc_index = np.asarray(batch[Columns.TRUNC_INDEX], dtype=np.int64).reshape(-1, 2)
    if len(trunc_index):
        nested.assign(next1, (trunc_index[:, 0], trunc_index[:, 1]), batch[Columns.TRUNC_OBS])

    t0 = np.arange(T)[:, None].repeat(N, axis=1)
    env = np.arange(N)[None, :].repeat(T, axis=0)
    ret = np.zeros((T, N))
    steps = np.zeros((T, N), dtype=np.int64)
    last = t0.copy()  # index of the last step included
    terminated = np.zeros((T, N), dtype=bool)
    alive = np.ones((T, N), dtype=bool)  # still accumulating
    for k in range(n):
        s = t0 + k
        valid = alive & (s < T)
        s = np.minimum(s, T - 1)
        ret += np.where(valid, gamma**k * rewards[s, env], 0.0)
        steps += valid
        last = np.where(valid, s, last)
        terminated |= valid & terms[s, env]
        alive = valid & ~dones[s, env]

    def flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(T * N, *x.shape[2:])

    return {
        Columns.OBS: nested.map_structure(flat, batch[Columns.OBS]),
        Columns.ACTIONS: nested.map_structure(flat, batch[Columns.ACTIONS]),
        Columns.REWARDS: flat(ret.astype(np.float32)),
        Columns.NEXT_OBS: nested.map_structure(lambda o: flat(o[last, env]), next1),
        Columns.TERMINATEDS: flat(terminated.astype(np.float32)),
        Columns.DISCOUNTS: flat((gamma**steps).astype(np.float32)),
        Columns.N_STEPS: flat(steps),
    }
