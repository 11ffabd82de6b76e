"""K MLPs of the same shape evaluated as one network (SAC's twin critics, Q ensembles).

Layer l holds the K members' weights as one [K, in, out] tensor and biases as [K, 1, out],
so a forward pass is one batched matmul per layer for all members instead of one per
member and layer: on a CPU the fixed cost of each op (and of its autograd record) is a
large part of a small network's update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from scalerl.core.models.encoders import ACTIVATION_FNS, ACTIVATION_GRADS


class EnsembleMLP(nn.Module):
    """`num_members` independent MLPs in_dim -> hiddens -> out_dim, stacked.

    `forward(x)` takes x [B, in_dim] (the same input for every member) or [K, B, in_dim]
    (one per member) and returns [K, B, out_dim]. Weights are initialized as `mlp`'s
    (orthogonal, gain sqrt(2) on hidden layers and `out_gain` on the output), member by
    member.
    """

    def __init__(
        self,
        num_members: int,
        in_dim: int,
        hiddens: Sequence[int],
        activation: str = "relu",
        out_dim: int = 1,
        out_gain: float = 1.0,
    ):
        super().__init__()
        dims = [in_dim, *hiddens, out_dim]
        self.num_members = num_members
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(dims, dims[1:])):
            gain = out_gain if i == len(dims) - 2 else math.sqrt(2)
            w = torch.empty(num_members, a, b)
            for k in range(num_members):
                # nn.Linear's weight is [out, in]: initialize it so, store it transposed.
                w[k] = nn.init.orthogonal_(torch.empty(b, a), gain).t()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(num_members, 1, b)))
        self.activation = ACTIVATION_FNS[activation]
        self.activation_name = activation
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """[K, B, out_dim]. With `detach_params` the output carries gradients to `x` but
        not to the weights (SAC's actor loss differentiates through the critics only with
        respect to the action)."""
        if x.dim() == 2:
            x = x.expand(self.num_members, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if detach_params:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.activation(x)
        return x

    def forward_cached(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """`forward(x)`, keeping each layer's (input, pre-activation, output) for
        `backward`. Call it under `torch.no_grad()`."""
        if x.dim() == 2:
            x = x.expand(self.num_members, *x.shape)
        cache = []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, x, w)
            y = self.activation(z) if i < last else z
            cache.append((x, z, y))
            x = y
        return x, cache

    def backward(
        self, cache: list, grad_out: torch.Tensor, weight_grads: bool = True, input_grad=False
    ) -> torch.Tensor | None:
        """Backpropagate `grad_out` [K, B, out_dim] through the cached forward pass.

        With `weight_grads` writes d loss / d W = x^T g and d loss / d b = sum_batch g into
        each layer's `.grad` (overwriting it); with `input_grad` returns d loss / d x
        [K, B, in_dim]. Call it under `torch.no_grad()`.
        """
        act_grad = ACTIVATION_GRADS[self.activation_name]
        g = grad_out
        last = len(self.weights) - 1
        for i in range(last, -1, -1):
            x, z, y = cache[i]
            w, b = self.weights[i], self.biases[i]
            if i < last:
                g = act_grad(g, z, y)
            if weight_grads:
                torch.bmm(x.transpose(1, 2), g, out=w.grad)
                torch.sum(g, 1, keepdim=True, out=b.grad)
            if i > 0 or input_grad:
                g = torch.bmm(g, w.transpose(1, 2))
        return g if input_grad else None
