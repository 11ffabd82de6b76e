"""Cut an EnvRunner's stream of fragments [T, N] into R2D2's replay sequences.

In every episode of every env, sequence k starts at episode step k S (S = `max_seq_len`)
and runs L = B + S steps (B = `burn_in`), or to the episode's end:

    episode steps   0 .......... S .......... 2S .......... 3S
    sequence 0      [--------- trained: S + B --------]
    sequence 1                   [- burn-in B -][- trained S -]
    sequence 2                                  [- burn-in B -][- trained S -]

Adjacent sequences overlap by B steps, the burn-in of the later one, so every step is
trained in exactly one sequence: the paper's overlapping sequences. At an episode start the
stored state is the exact initial state, so sequence 0 needs no burn-in and trains on all
its steps. The EnvRunner records the module's state at those starts (the runner's
`seq_index` / `state_in`, with the module's `episode_aligned_states`), so no state is sent
per step. Sequences span fragments: the cutter keeps the last L - 1 steps of each env and
emits a sequence in the call in which its last step arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scalerl.core.columns import Columns
from scalerl.utils import nested


class SequenceCutter:
    """One per EnvRunner: `add(fragment)` returns the sequences it completes (or None).

    Args:
        max_seq_len: S, the trained steps per sequence and the stride between starts.
        burn_in: B, the steps before them that only unroll the network.
    """

    def __init__(self, max_seq_len: int, burn_in: int = 0):
        if max_seq_len < 1 or burn_in < 0:
            raise ValueError(
                f"Need max_seq_len >= 1 and burn_in >= 0, got {max_seq_len}, {burn_in}."
            )
        self.stride, self.burn_in = int(max_seq_len), int(burn_in)
        self.length = self.stride + self.burn_in
        self._carry: dict[str, Any] | None = None  # the last L - 1 steps of every env

    def add(self, fragment: dict[str, Any]) -> dict[str, Any] | None:
        """Add a [T, N] fragment; return the sequences that are now complete, or None.

        Sequence k of an episode starts at episode step k * max_seq_len and runs
        max_seq_len + burn_in steps, or to the episode's end (the module docstring draws it).
        The steps of sequences still open are kept for the next fragment.
        """
        window = self._window(fragment)
        C = 0 if self._carry is None else len(self._carry["dones"])
        W, N = window["dones"].shape
        # Pending sequences start in the last L - 1 rows (one row at least: the episode step).
        keep = max(1, self.length - 1)
        self._carry = nested.map_structure(lambda x: x[max(0, W - keep) :], window)

        ep_step = window["ep_step"]
        t0, n = np.nonzero(ep_step % self.stride == 0)
        rows = np.arange(W)[:, None]
        # The first episode end at or after each row (W: none in this window).
        next_done = np.minimum.accumulate(np.where(window["dones"], rows, W)[::-1], axis=0)[::-1]
        length = np.minimum(self.length, next_done[t0, n] - t0 + 1)
        end = t0 + length - 1
        burn_in = np.where(ep_step[t0, n] == 0, 0, self.burn_in)
        # Complete in this window, not already emitted (its last step is new), and with a
        # trained step (otherwise the previous sequence trained all of its steps).
        emit = (end < W) & (end >= C) & (length > burn_in)
        if not emit.any():
            return None
        t0, n, length, end, burn_in = t0[emit], n[emit], length[emit], end[emit], burn_in[emit]
        if not window["has_state"][t0, n].all():
            raise RuntimeError(
                "The EnvRunner did not record the module's state where a replay sequence "
                "starts: the module must set `episode_aligned_states = True` (the runner then "
                "records the state every `max_seq_len` steps of each episode)."
            )
        return self._gather(window, t0, n, length, end, burn_in)

    def _gather(self, w: dict, t0, n, length, end, burn_in) -> dict[str, Any]:
        L, K = self.length, len(t0)
        pos = np.arange(L + 1)[None, :]
        rows = np.minimum(t0[:, None] + pos, len(w["dones"]) - 1)
        cols = n[:, None]
        mask = pos[:, :L] < length[:, None]

        def steps(x: np.ndarray) -> np.ndarray:
            out = x[rows[:, :L], cols]
            keep = mask.reshape(*mask.shape, *[1] * (out.ndim - 2))
            return np.where(keep, out, 0).astype(x.dtype, copy=False)

        def observations(o: np.ndarray, next_o: np.ndarray) -> np.ndarray:
            out = o[rows, cols]
            out[np.arange(K), length] = next_o[end, n]  # the bootstrap / final observation
            keep = (pos <= length[:, None]).reshape(K, L + 1, *[1] * (out.ndim - 2))
            return np.where(keep, out, 0).astype(o.dtype, copy=False)

        return {
            Columns.OBS: nested.map_structure(observations, w[Columns.OBS], w[Columns.NEXT_OBS]),
            Columns.ACTIONS: nested.map_structure(steps, w[Columns.ACTIONS]),
            Columns.REWARDS: steps(w[Columns.REWARDS]),
            Columns.TERMINATEDS: steps(w[Columns.TERMINATEDS]),
            Columns.SEQ_MASK: mask,
            Columns.BURN_IN: burn_in.astype(np.int64),
            Columns.STATE_IN: {k: v[t0, n] for k, v in w["state"].items()},
            Columns.SEQ_PREV_ACTION: nested.map_structure(
                lambda a: a[t0, n], w[Columns.PREV_ACTIONS]
            ),
            Columns.SEQ_PREV_REWARD: w[Columns.PREV_REWARDS][t0, n].astype(np.float32),
        }

    def _window(self, fragment: dict[str, Any]) -> dict[str, Any]:
        """The carried steps followed by this fragment's, as [W, N, ...] step columns."""
        terms = np.asarray(fragment[Columns.TERMINATEDS], dtype=bool)
        dones = terms | np.asarray(fragment[Columns.TRUNCATEDS], dtype=bool)
        T, N = dones.shape
        obs = fragment[Columns.OBS]
        # o_{t+1} within the episode: the next row, the bootstrap obs after the last row,
        # the true final obs where an episode was truncated (as `n_step_transitions`).
        next_obs = nested.map_structure(
            lambda o, b: np.concatenate([o[1:], b[None]]), obs, fragment[Columns.BOOTSTRAP_OBS]
        )
        trunc = np.asarray(fragment[Columns.TRUNC_INDEX], dtype=np.int64).reshape(-1, 2)
        if len(trunc):
            nested.assign(next_obs, (trunc[:, 0], trunc[:, 1]), fragment[Columns.TRUNC_OBS])
        # Episode step of each row: continue the carried count, restart after every end.
        if self._carry is None:
            first = np.zeros(N, dtype=np.int64)  # a runner's first fragment starts episodes
        else:
            first = np.where(self._carry["dones"][-1], 0, self._carry["ep_step"][-1] + 1)
        t = np.arange(T)[:, None]
        last_end = np.maximum.accumulate(np.where(dones, t, -1), axis=0)
        last_end = np.concatenate([np.full((1, N), -1), last_end[:-1]])  # ends before row t
        ep_step = np.where(last_end >= 0, t - last_end - 1, first[None, :] + t)
        # The module's state, where the runner recorded it.
        seq_t, seq_n = fragment[Columns.SEQ_INDEX][:, 0], fragment[Columns.SEQ_INDEX][:, 1]
        state = {}
        for k, v in fragment[Columns.STATE_IN].items():
            state[k] = np.zeros((T, N, *v.shape[1:]), dtype=v.dtype)
            state[k][seq_t, seq_n] = v
        has_state = np.zeros((T, N), dtype=bool)
        has_state[seq_t, seq_n] = True
        new = {
            Columns.OBS: obs,
            Columns.NEXT_OBS: next_obs,
            Columns.ACTIONS: fragment[Columns.ACTIONS],
            Columns.REWARDS: np.asarray(fragment[Columns.REWARDS], dtype=np.float32),
            Columns.TERMINATEDS: terms,
            "dones": dones,
            "ep_step": ep_step,
            Columns.PREV_ACTIONS: fragment[Columns.PREV_ACTIONS],
            Columns.PREV_REWARDS: np.asarray(fragment[Columns.PREV_REWARDS], dtype=np.float32),
            "state": state,
            "has_state": has_state,
        }
        if self._carry is None:
            return new
        return nested.map_structure(lambda a, b: np.concatenate([a, b]), self._carry, new)
