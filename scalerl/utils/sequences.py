"""Time-major fragments [T, N] <-> zero-padded sequences [S, L] for recurrent modules.

An EnvRunner with a stateful module starts a new sequence in env column n at step t when
t is the fragment's first step, when an episode starts, or when the running sequence has
reached `max_seq_len` steps. It records each start as a row (t, n) of `seq_index` and the
module's state at that step as the same row of `state_in`. Learners cut the fragment
into those sequences, pad them to one length L and carry a mask of the valid steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils.nested import map_structure


@dataclass
class SequenceLayout:
    """Where each step of each sequence lives in the [T, N] fragment.

    t, n: [S, L] time and env index of step l of sequence s (padding repeats a valid
    index); mask: [S, L], True at valid steps.
    """

    t: np.ndarray
    n: np.ndarray
    mask: np.ndarray

    @classmethod
    def from_starts(cls, seq_index: np.ndarray, T: int) -> SequenceLayout:
        """The layout of the sequences starting at rows (t, n) of `seq_index` [S, 2]; each
        runs to the next start in its column, or to the fragment's end."""
        t0, n = seq_index[:, 0], seq_index[:, 1]
        order = np.lexsort((t0, n))  # by column, then time
        t_sorted, n_sorted = t0[order], n[order]
        end_sorted = np.full(len(order), T, dtype=np.int64)
        same_column = n_sorted[1:] == n_sorted[:-1]
        end_sorted[:-1][same_column] = t_sorted[1:][same_column]
        lengths = np.empty(len(order), dtype=np.int64)
        lengths[order] = end_sorted - t_sorted
        steps = np.arange(int(lengths.max()) if len(lengths) else 0)
        mask = steps[None, :] < lengths[:, None]
        t = np.minimum(t0[:, None] + steps[None, :], T - 1)
        return cls(t=t, n=np.broadcast_to(n[:, None], t.shape).copy(), mask=mask)

    def gather(self, x: Any) -> Any:
        """[T, N, ...] (nested) -> [S, L, ...]."""
        return map_structure(lambda a: a[self.t, self.n], x)

    def scatter(self, y: np.ndarray, T: int, N: int) -> np.ndarray:
        """[S, L] -> [T, N] (the inverse of `gather` on the valid steps)."""
        out = np.zeros((T, N, *y.shape[2:]), dtype=y.dtype)
        out[self.t[self.mask], self.n[self.mask]] = y[self.mask]
        return out


def sequence_starts(t: int, steps_in_sequence: np.ndarray, max_seq_len: int) -> np.ndarray:
    """Which envs start a sequence at step t of a fragment (see the module docstring).

    `steps_in_sequence[n]` counts the steps env n took since its sequence started, and is
    0 after an episode start."""
    if t == 0:
        return np.ones(len(steps_in_sequence), dtype=bool)
    return (steps_in_sequence == 0) | (steps_in_sequence >= max_seq_len)


def sequence_batch(fragment: dict[str, Any], layout: SequenceLayout, keys: list[str]) -> dict:
    """The [T, N] columns `keys` of a fragment as sequences [S, L, ...], with the state at
    each sequence's start, the previous actions and rewards, and the loss mask."""
    batch = {k: layout.gather(fragment[k]) for k in keys}
    batch[Columns.STATE_IN] = fragment[Columns.STATE_IN]
    for k in (Columns.PREV_ACTIONS, Columns.PREV_REWARDS):
        batch[k] = layout.gather(fragment[k])
    batch[Columns.LOSS_MASK] = layout.mask
    return batch


def one_step_inputs(obs: Any, state: dict, prev_actions: Any, prev_rewards: np.ndarray) -> dict:
    """A batch of single steps (T = 1) for a stateful module."""
    return {
        Columns.OBS: map_structure(lambda x: x[:, None], obs),
        Columns.STATE_IN: state,
        Columns.PREV_ACTIONS: map_structure(lambda x: x[:, None], prev_actions),
        Columns.PREV_REWARDS: prev_rewards[:, None],
    }


def recurrent_values(
    compute_values: Callable[[dict], np.ndarray], fragment: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V(s_t) [T, N], V(bootstrap_obs) [N] and V(trunc_obs) [K] of a stateful module.

    `compute_values` maps a batch of numpy sequences to values [B, T] (numpy). Each
    observation after a step sees that step's action and reward as its previous ones
    (zero when the episode ended, as the EnvRunner feeds them).
    """
    rewards, actions = fragment[Columns.REWARDS], fragment[Columns.ACTIONS]
    T, N = rewards.shape
    layout = SequenceLayout.from_starts(fragment[Columns.SEQ_INDEX], T)
    values = layout.scatter(compute_values(sequence_batch(fragment, layout, [Columns.OBS])), T, N)
    done = fragment[Columns.TERMINATEDS][-1] | fragment[Columns.TRUNCATEDS][-1]

    def last(x: np.ndarray) -> np.ndarray:
        return np.where(done.reshape(-1, *[1] * (x.ndim - 2)), np.zeros_like(x[-1]), x[-1])

    bootstrap_values = compute_values(
        one_step_inputs(
            fragment[Columns.BOOTSTRAP_OBS],
            fragment[Columns.BOOTSTRAP_STATE],
            map_structure(last, actions),
            last(rewards),
        )
    )[:, 0]
    t, n = fragment[Columns.TRUNC_INDEX][:, 0], fragment[Columns.TRUNC_INDEX][:, 1]
    trunc_values = np.zeros(0, dtype=np.float32)
    if len(t):
        trunc_values = compute_values(
            one_step_inputs(
                fragment[Columns.TRUNC_OBS],
                fragment[Columns.TRUNC_STATE],
                map_structure(lambda a: a[t, n], actions),
                rewards[t, n],
            )
        )[:, 0]
    return values, bootstrap_values, trunc_values
