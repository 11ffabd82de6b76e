"""K MLPs of the same shape evaluated as one network (SAC's twin critics, Q ensembles).

Layer l holds the K members' weights as one [K, in, out] tensor and biases as [K, 1, out],
so a forward pass is one batched matmul per layer for all members instead of one per
member and layer: on a CPU the fixed cost of each op (and of its autograd record) is a
large part of a small network's update.

The output layer is narrow (1 output for Q(s, a), |A| for Q(s, .)), and there CPU `bmm`
is slow: [2, 256, 256] x [2, 256, 1] took ~200 us, as long as a tenth of a square
256-wide layer, and so did its weight gradient. That layer keeps its weight as
[K, out, in] (nn.Linear's layout): the weight gradient g^T x is then a fast bmm (~30 us),
and a single output is computed as a product and a sum (~50 us).
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
        # Layer i is `weight_i` [K, in, out] and `bias_i` [K, 1, out], looked up by name in
        # `_parameters` (indexing an nn.ParameterList costs microseconds per access).
        self.names = [(f"weight_{i}", f"bias_{i}") for i in range(len(dims) - 1)]
        last = len(dims) - 2
        for i, (a, b) in enumerate(zip(dims, dims[1:])):
            gain = out_gain if i == last else math.sqrt(2)
            # nn.Linear's weight is [out, in]: initialize it so; hidden layers store it
            # transposed ([in, out]: x @ W), the output layer as it is.
            w = torch.stack(
                [nn.init.orthogonal_(torch.empty(b, a), gain) for _ in range(num_members)]
            )
            if i < last:
                w = w.transpose(1, 2).contiguous()
            self.register_parameter(self.names[i][0], nn.Parameter(w))
            self.register_parameter(self.names[i][1], nn.Parameter(torch.zeros(num_members, 1, b)))
        self.activation = ACTIVATION_FNS[activation]
        self.activation_name = activation
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """[K, B, out_dim]. With `detach_params` the output carries gradients to `x` but
        not to the weights (SAC's actor loss differentiates through the critics only with
        respect to the action)."""
        if x.dim() == 2:
            x = x.expand(self.num_members, *x.shape)
        params, last = self._parameters, len(self.names) - 1
        for i, (w_name, b_name) in enumerate(self.names):
            w, b = params[w_name], params[b_name]
            if detach_params:
                w, b = w.detach(), b.detach()
            if i < last:
                x = self.activation(torch.baddbmm(b, x, w))
            else:
                x = _output_layer(x, w, b)
        return x

    def forward_cached(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """`forward(x)`, keeping each layer's (input, pre-activation, output) for
        `backward`. Call it under `torch.no_grad()`."""
        if x.dim() == 2:
            x = x.expand(self.num_members, *x.shape)
        cache = []
        params, last = self._parameters, len(self.names) - 1
        for i, (w_name, b_name) in enumerate(self.names):
            w, b = params[w_name], params[b_name]
            z = torch.baddbmm(b, x, w) if i < last else _output_layer(x, w, b)
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
        params, last = self._parameters, len(self.names) - 1
        for i in range(last, -1, -1):
            x, z, y = cache[i]
            w, b = params[self.names[i][0]], params[self.names[i][1]]
            if i < last:
                g = act_grad(g, z, y)
            if weight_grads:  # the output layer's weight is [K, out, in]: g^T x
                if i < last:
                    torch.bmm(x.transpose(1, 2), g, out=w.grad)
                else:
                    torch.bmm(g.transpose(1, 2), x, out=w.grad)
                torch.sum(g, 1, keepdim=True, out=b.grad)
            if i > 0 or input_grad:
                g = torch.bmm(g, w.transpose(1, 2) if i < last else w)
        return g if input_grad else None


def _output_layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [K, B, in] times w [K, out, in] transposed, plus b [K, 1, out]."""
    if w.shape[1] == 1:
        return (x * w).sum(-1, keepdim=True) + b
    return torch.baddbmm(b, x, w.transpose(1, 2))
