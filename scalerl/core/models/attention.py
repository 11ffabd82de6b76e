"""GTrXL: the gated transformer memory of Parisotto et al. 2019 (model_config `use_attention`).

"Stabilizing Transformers for Reinforcement Learning" (arXiv:1910.06764) changes the
Transformer-XL block (Dai et al. 2019) in two ways, both kept here:

- Identity-map reordering: LayerNorm is applied to the *input* of each submodule, and a
  ReLU to its output, so the residual stream from the input to the output is untouched:
      Y = RelMultiHeadAttention(LayerNorm([StopGrad(M), E]))     (paper eq. 1-2)
      E' = g_MHA(E, ReLU(Y))
      Y' = MLP(LayerNorm(E'))
      E'' = g_MLP(E', ReLU(Y'))
- GRU-type gates g(x, y) in place of the residual sums x + y (paper eq. 10-13):
      r = sigma(W_r y + U_r x)
      z = sigma(W_z y + U_z x - b_g)
      h = tanh(W_g y + U_g (r * x))
      g = (1 - z) * x + z * h
  With b_g > 0 (`attention_init_gru_gate_bias`, 2.0) z starts near 0: each unit starts
  close to the identity map, which is what makes early RL training stable.

Positions: Transformer-XL's relative encoding (its section 3.3). A query at step t and a
key at step s score (q_t + u) . k_s + (q_t + v) . W_R R_{t-s}, with R the sinusoidal
embedding of the distance t - s and u, v learned per head.

Memory and windows. The state holds, for each unit, its inputs at the M previous steps
(M = max(memory_inference, memory_training)) and which of those slots are valid. Each
step attends to itself and to at most W previous steps, W = `memory_inference` in eval
mode and `memory_training` in train mode; inside a segment of T steps that window is
enforced by the attention mask, so running a segment at once gives the same outputs as
stepping through it one step at a time (T = 1, as EnvRunners do) from the same memory, for
any T. With equal memories (the default) sampling and training see the same window.

Episode starts: `initial_state()` has every memory slot invalid (`memory_mask` False),
so a state zeroed at an episode start attends to nothing from before it, whatever the
memory rows hold. Padding: steps with `mask` False (after an episode's end inside a
training sequence) are neither attended to nor written into the memory.

Cost per step and env: each unit re-projects its M memory rows to keys and values
(about M * attention_dim * 2 * num_heads * head_dim multiply-adds) and attends over M + 1
positions; the memory is not cached as keys/values because the weights change between
syncs. For the default sizes that is ~0.4M multiply-adds per unit; a step of 16 envs is
dominated by the ~60 torch op calls per unit, not the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# RLlib's MODEL_DEFAULTS for the attention keys.
ATTENTION_DEFAULTS: dict[str, Any] = {
    "attention_num_transformer_units": 1,
    "attention_dim": 64,
    "attention_num_heads": 1,
    "attention_head_dim": 32,
    "attention_memory_inference": 50,
    "attention_memory_training": 50,
    "attention_position_wise_mlp_dim": 32,
    "attention_init_gru_gate_bias": 2.0,
}


class GRUGate(nn.Module):
    """The gate g(x, y) of the paper's eq. 10-13: x the residual stream, y the submodule."""

    def __init__(self, dim: int, init_bias: float):
        super().__init__()
        self.w = nn.Linear(dim, 3 * dim, bias=False)  # W_r, W_z, W_g applied to y
        self.u_rz = nn.Linear(dim, 2 * dim, bias=False)  # U_r, U_z applied to x
        self.u_g = nn.Linear(dim, dim, bias=False)  # U_g applied to r * x
        self.b_g = nn.Parameter(torch.full((dim,), float(init_bias)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        wr, wz, wg = F.linear(y, self.w.weight).chunk(3, -1)
        ur, uz = F.linear(x, self.u_rz.weight).chunk(2, -1)
        r = torch.sigmoid(wr + ur)
        z = torch.sigmoid(wz + uz - self.b_g)
        h = torch.tanh(wg + F.linear(r * x, self.u_g.weight))
        return torch.lerp(x, h, z)  # (1 - z) * x + z * h


class GTrXLUnit(nn.Module):
    """One transformer unit: gated relative multi-head attention, then a gated MLP."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_dim: int, gate_bias: float):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.norm_attention = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, inner, bias=False)
        self.key_value = nn.Linear(dim, 2 * inner, bias=False)
        self.position = nn.Linear(dim, inner, bias=False)  # W_R of Transformer-XL
        self.u = nn.Parameter(torch.zeros(num_heads, head_dim))  # content bias
        self.v = nn.Parameter(torch.zeros(num_heads, head_dim))  # position bias
        self.attention_out = nn.Linear(inner, dim, bias=False)
        self.gate_attention = GRUGate(dim, gate_bias)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp_hidden = nn.Linear(dim, mlp_dim)
        self.mlp_out = nn.Linear(mlp_dim, dim)
        self.gate_mlp = GRUGate(dim, gate_bias)

    def forward(
        self,
        e: torch.Tensor,
        memory: torch.Tensor,
        allowed: torch.Tensor,
        distance: torch.Tensor,
        pos_embedding: torch.Tensor,
    ) -> torch.Tensor:
        """e: [B, T, D] inputs, memory: [B, M, D] earlier inputs, allowed: [B, T, M + T]
        which keys each query may attend to, distance: [T, M + T] query step minus key
        step (clamped to the window), pos_embedding: [W + 1, D] for distances 0..W."""
        (batch, steps, dim), num_keys = e.shape, memory.shape[1] + e.shape[1]
        heads, head_dim = self.num_heads, self.head_dim
        y = F.layer_norm(
            torch.cat([memory, e], 1), (dim,), self.norm_attention.weight, self.norm_attention.bias
        )
        # Heads first: [B, H, steps, head_dim], so the scores are batched matmuls.
        q = F.linear(y[:, memory.shape[1] :], self.query.weight)
        q = q.view(batch, steps, heads, head_dim).transpose(1, 2)
        kv = F.linear(y, self.key_value.weight).view(batch, num_keys, 2 * heads, head_dim)
        k, v = kv.transpose(1, 2).split(heads, 1)
        r = F.linear(pos_embedding, self.position.weight).view(-1, heads, head_dim)
        content = (q + self.u[:, None]) @ k.transpose(-1, -2)  # [B, H, T, M + T]
        by_distance = (q + self.v[:, None]) @ r.permute(1, 2, 0)  # [B, H, T, W + 1]
        position = by_distance.gather(-1, distance.expand(batch, heads, steps, num_keys))
        scores = (content + position) * (1.0 / math.sqrt(head_dim))
        weights = scores.masked_fill(~allowed[:, None], float("-inf")).softmax(-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, steps, heads * head_dim)
        y = F.relu(F.linear(attended, self.attention_out.weight))
        e = self.gate_attention(e, y)
        y = F.layer_norm(e, (dim,), self.norm_mlp.weight, self.norm_mlp.bias)
        y = F.relu(F.linear(y, self.mlp_hidden.weight, self.mlp_hidden.bias))
        y = F.relu(F.linear(y, self.mlp_out.weight, self.mlp_out.bias))
        return self.gate_mlp(e, y)


def sinusoidal_embedding(distances: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer's sinusoids [sin(d / 10000^(2i/dim)), cos(...)] for each distance d."""
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angles = distances.to(torch.float64)[:, None] * inv_freq[None]
    return torch.cat([angles.sin(), angles.cos()], -1)[:, :dim]


class GTrXL(nn.Module):
    """Gated Transformer-XL over [memory; current steps] (see the module docstring).

    Args:
        in_dim: Size of each step's input features (projected linearly to `attention_dim`).
        attention_dim: Width of the residual stream and of the output.
        num_transformer_units: Number of stacked units.
        num_heads: Attention heads per unit.
        head_dim: Width of each head's queries, keys and values.
        position_wise_mlp_dim: Hidden width of each unit's MLP.
        memory_inference: Previous steps each step attends to in eval mode.
        memory_training: Previous steps each step attends to in train mode.
        init_gru_gate_bias: Initial b_g of the gates (> 0: units start near identity).
    """

    def __init__(
        self,
        in_dim: int,
        *,
        attention_dim: int = 64,
        num_transformer_units: int = 1,
        num_heads: int = 1,
        head_dim: int = 32,
        position_wise_mlp_dim: int = 32,
        memory_inference: int = 50,
        memory_training: int = 50,
        init_gru_gate_bias: float = 2.0,
    ):
        super().__init__()
        for name, value in {
            "in_dim": in_dim,
            "attention_dim": attention_dim,
            "attention_num_transformer_units": num_transformer_units,
            "attention_num_heads": num_heads,
            "attention_head_dim": head_dim,
            "attention_position_wise_mlp_dim": position_wise_mlp_dim,
            "attention_memory_inference": memory_inference,
            "attention_memory_training": memory_training,
        }.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        self.attention_dim = self.out_dim = attention_dim
        self.num_transformer_units = num_transformer_units
        self.memory_inference, self.memory_training = memory_inference, memory_training
        self.memory_len = max(memory_inference, memory_training)
        self.input_layer = nn.Linear(in_dim, attention_dim)
        self.units = nn.ModuleList(
            GTrXLUnit(attention_dim, num_heads, head_dim, position_wise_mlp_dim, init_gru_gate_bias)
            for _ in range(num_transformer_units)
        )
        self._index_cache: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def initial_state(self) -> dict[str, torch.Tensor]:
        """Per-env state without a batch axis; all zeros, so a zeroed state is a fresh one.

        Returns:
            {"memory": float [num_transformer_units, M, attention_dim] (each unit's inputs
            at the M previous steps, oldest first), "memory_mask": bool [M] (which of those
            steps belong to the current episode)}, M = max(memory_inference, memory_training).
        """
        weight = self.input_layer.weight
        units, m, dim = self.num_transformer_units, self.memory_len, self.attention_dim
        return {
            "memory": torch.zeros(units, m, dim, dtype=weight.dtype, device=weight.device),
            "memory_mask": torch.zeros(m, dtype=torch.bool, device=weight.device),
        }

    def forward(
        self,
        x: torch.Tensor,
        state: dict[str, torch.Tensor],
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run T steps of B envs from their memory.

        Args:
            x: [B, T, in_dim] inputs (T = 1 when stepping envs).
            state: {"memory": [B, units, M, attention_dim], "memory_mask": [B, M]} (any
                dtype; nonzero = valid), as from a batch of `initial_state()` or a
                previous call.
            mask: [B, T] bool, False at padding after the valid steps; None: all valid.

        Returns:
            out [B, T, attention_dim] (padded steps get finite values to be ignored), and
            the new state: the memory shifted by each env's valid steps. It is detached
            (the paper's StopGrad on the memory).
        """
        memory, memory_valid = state["memory"].detach(), state["memory_mask"] != 0
        batch, steps = x.shape[:2]
        if memory.shape[1:] != (self.num_transformer_units, self.memory_len, self.attention_dim):
            raise ValueError(
                f"state['memory'] has shape {tuple(memory.shape)}; expected [B, "
                f"{self.num_transformer_units}, {self.memory_len}, {self.attention_dim}] "
                "(attention_num_transformer_units, max of the attention memories, attention_dim)."
            )
        window = self.memory_training if self.training else self.memory_inference
        in_window, distance, pos_embedding = self._indices(steps, window, x)
        step_valid = None if mask is None else mask.to(torch.bool)
        if step_valid is None:
            step_valid_or_all = torch.ones(batch, steps, dtype=torch.bool, device=x.device)
        else:
            step_valid_or_all = step_valid
        key_valid = torch.cat([memory_valid, step_valid_or_all], 1)
        # A step always attends to itself, so no row is empty (padded steps stay finite).
        allowed = in_window[1] | (in_window[0] & key_valid[:, None, :])

        e = F.linear(x, self.input_layer.weight, self.input_layer.bias)
        inputs = []
        for i, unit in enumerate(self.units):
            inputs.append(e)
            e = unit(e, memory[:, i], allowed, distance, pos_embedding)
        return e, self._shift(memory, key_valid, torch.stack(inputs, 1).detach(), step_valid)

    def _shift(
        self,
        memory: torch.Tensor,
        key_valid: torch.Tensor,
        inputs: torch.Tensor,
        step_valid: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """The last M valid rows of [memory; inputs] per env (inputs: [B, units, T, D])."""
        m = self.memory_len
        rows = torch.cat([memory, inputs], 2)
        if step_valid is None:
            return {"memory": rows[:, :, -m:], "memory_mask": key_valid[:, -m:]}
        # A stable sort moves the padded steps to the front and keeps the memory and the
        # valid steps in time order: the last M positions are the newest M rows, exactly
        # as if only the valid steps had been run.
        keep = torch.cat([torch.ones_like(key_valid[:, :m]), step_valid], 1)
        order = torch.sort(keep.to(torch.uint8), dim=1, stable=True).indices[:, -m:]
        index = order[:, None, :, None].expand(-1, rows.shape[1], -1, rows.shape[3])
        return {"memory": rows.gather(2, index), "memory_mask": key_valid.gather(1, order)}

    def _indices(self, steps: int, window: int, like: torch.Tensor) -> tuple:
        """Cached ((window mask, diagonal) [T, M + T] each, distance, pos. embedding)."""
        key = (steps, window, like.device, like.dtype)
        if key not in self._index_cache:
            m = self.memory_len
            query_step = torch.arange(steps, device=like.device)[:, None]
            key_step = torch.arange(m + steps, device=like.device)[None] - m
            distance = query_step - key_step  # t - s; negative = future
            in_window = (distance >= 0) & (distance <= window)
            positions = torch.arange(window + 1, device=like.device)
            pos_embedding = sinusoidal_embedding(positions, self.attention_dim).to(like)
            self._index_cache[key] = (
                (in_window, distance == 0),
                distance.clamp(0, window),
                pos_embedding,
            )
        return self._index_cache[key]


def gtrxl_from_model_config(in_dim: int, model_config: Mapping[str, Any] | Any) -> GTrXL:
    """A GTrXL from RLlib's `attention_*` model-config keys (a dict or a config object);
    missing keys take RLlib's defaults (`ATTENTION_DEFAULTS`)."""

    def get(key: str) -> Any:
        if isinstance(model_config, Mapping):
            value = model_config.get(key)
        else:
            value = getattr(model_config, key, None)
        return ATTENTION_DEFAULTS[key] if value is None else value

    return GTrXL(
        in_dim,
        attention_dim=get("attention_dim"),
        num_transformer_units=get("attention_num_transformer_units"),
        num_heads=get("attention_num_heads"),
        head_dim=get("attention_head_dim"),
        position_wise_mlp_dim=get("attention_position_wise_mlp_dim"),
        memory_inference=get("attention_memory_inference"),
        memory_training=get("attention_memory_training"),
        init_gru_gate_bias=get("attention_init_gru_gate_bias"),
    )
