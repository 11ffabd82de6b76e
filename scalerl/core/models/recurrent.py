"""Memory cores for recurrent modules: an LSTM (and, in `attention.py`, a GTrXL).

A core maps a sequence of feature vectors to a sequence of outputs while carrying a state:

    out [B, T, out_dim], state_out = core(x [B, T, in_dim], state_in, mask [B, T] or None)

`state_in` / `state_out` are dicts of tensors with a leading batch axis; `initial_state()`
gives one env's state without it (what an EnvRunner puts in place at an episode start).
EnvRunners call a core with T = 1 at every step; learners call it on zero-padded
sequences of `max_seq_len` steps with the state stored at each sequence's start.
"""

from __future__ import annotations

import torch
from torch import nn


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
