"""Memory cores for recurrent modules: an LSTM (and, in `attention.py`, a GTrXL).

A core maps a sequence of feature vectors to a sequence of outputs while carrying a state:

    out [B, T, out_dim], state_out = core(x [B, T, in_dim], state_in, mask [B, T] or None)

`state_in` / `state_out` are dicts of tensors with a leading batch axis; `initial_state()`
gives one env's state without it (what an EnvRunner puts in place at an episode start).
EnvRunners call a core with T = 1 at every step; learners call it on zero-padded
sequences of `max_seq_len` steps with the state stored at each sequence's start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from scalerl.core.columns import Columns
from scalerl.utils.nested import first_leaf, map_structure


def memory_inputs(
    pre: Callable, prev_action_pre: Callable | None, use_prev_reward: bool, obs: Any, batch: dict
) -> tuple[torch.Tensor, int, int]:
    """A memory core's input [B*T, in_dim] from [B, T] batches: pre(o_t) [, features of
    a_{t-1}] [, r_{t-1}], and (B, T)."""
    B, T = first_leaf(obs).shape[:2]

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(B * T, *x.shape[2:])

    parts = [pre(map_structure(flat, obs))]
    if prev_action_pre is not None:
        parts.append(prev_action_pre(map_structure(flat, batch[Columns.PREV_ACTIONS])))
    if use_prev_reward:
        parts.append(batch[Columns.PREV_REWARDS].reshape(B * T, 1).float())
    return (torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]), B, T


class LSTMCore(nn.Module):
    """One LSTM layer (Hochreiter & Schmidhuber 1997), batch-first.

    State: {"h": [B, cell_size], "c": [B, cell_size]}. Padding only ever follows the valid
    steps of a sequence, and an LSTM is causal, so padded steps cannot change the outputs
    at valid steps; the mask is not needed here.
    """

    def __init__(self, in_dim: int, cell_size: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cell_size, batch_first=True)
        self.out_dim = cell_size
        # Forget-gate bias 1 (Jozefowicz et al. 2015): remember by default at the start.
        with torch.no_grad():
            for bias in (self.lstm.bias_ih_l0, self.lstm.bias_hh_l0):
                bias.zero_()
                bias[cell_size : 2 * cell_size] = 0.5

    def initial_state(self) -> dict[str, torch.Tensor]:
        """Zero LSTM state for one sequence: {"h": zeros(out_dim), "c": zeros(out_dim)}."""
        zeros = torch.zeros(self.out_dim)
        return {"h": zeros, "c": zeros.clone()}

    def forward(
        self,
        x: torch.Tensor,
        state: dict[str, torch.Tensor],
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h0, c0 = state["h"].unsqueeze(0), state["c"].unsqueeze(0)
        out, (h, c) = self.lstm(x, (h0.contiguous(), c0.contiguous()))
        return out, {"h": h.squeeze(0), "c": c.squeeze(0)}

    def numpy_step_fn(
        self,
    ) -> Callable[[np.ndarray, dict[str, np.ndarray]], tuple[np.ndarray, dict[str, np.ndarray]]]:
        """One step (no time axis) in numpy with the current weights, for EnvRunners:
        x [B, in_dim], state -> (h [B, cell], state_out). Call again after weights change.

            i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh)
            c' = sigmoid(f) c + sigmoid(i) tanh(g),   h' = sigmoid(o) tanh(c')
        """
        lstm = self.lstm
        w_ih = lstm.weight_ih_l0.detach().cpu().numpy().T.copy()
        w_hh = lstm.weight_hh_l0.detach().cpu().numpy().T.copy()
        bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().cpu().numpy().copy()
        n = self.out_dim

        def sigmoid(z: np.ndarray) -> np.ndarray:
            return 0.5 * (np.tanh(0.5 * z) + 1.0)  # stable for large |z|

        def step(x: np.ndarray, state: dict[str, np.ndarray]):
            z = (x @ w_ih + state["h"] @ w_hh + bias).astype(np.float32, copy=False)
            i, f = sigmoid(z[:, :n]), sigmoid(z[:, n : 2 * n])
            g, o = np.tanh(z[:, 2 * n : 3 * n]), sigmoid(z[:, 3 * n :])
            c = f * state["c"] + i * g
            h = o * np.tanh(c)
            return h, {"h": h, "c": c}

        return step
