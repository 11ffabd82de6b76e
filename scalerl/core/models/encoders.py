"""Building blocks made from the spaces: observation preprocessing and MLPs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

ACTIVATION_FNS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "elu": nn.functional.elu,
    "swish": nn.functional.silu,
    "silu": nn.functional.silu,
    "linear": lambda x: x,
}
ACTIVATIONS = tuple(ACTIVATION_FNS)
NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "linear": lambda x: x,
}
NumpyFn = Callable[[np.ndarray], np.ndarray]
# d act(z) / dz times an upstream gradient g, from the pre-activation z and output y.
ACTIVATION_GRADS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "tanh": lambda g, z, y: torch.addcmul(g, g, y * y, value=-1.0),
    # The op autograd's relu backward runs: one pass, no bool mask (6x faster than g * (y > 0)).
    "relu": lambda g, z, y: torch.ops.aten.threshold_backward(g, y, 0.0),
    "elu": lambda g, z, y: torch.where(z > 0, g, g * (y + 1.0)),
    "swish": lambda g, z, y: g * _silu_grad(z),
    "silu": lambda g, z, y: g * _silu_grad(z),
    "linear": lambda g, z, y: g,
}


def _silu_grad(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


class MLP(nn.Module):
    """Linear layers with an activation between them (none after the last when `out_dim`).

    The forward pass calls the functional ops directly: at the batch sizes of an
    EnvRunner step, per-submodule call overhead would cost more than the math.
    """

    def __init__(
        self,
        in_dim: int,
        hiddens: Sequence[int],
        activation: str = "tanh",
        out_dim: int | None = None,
        out_gain: float = 1.0,
    ):
        super().__init__()
        dims = [in_dim, *hiddens]
        layers = [_init(nn.Linear(a, b), math.sqrt(2)) for a, b in zip(dims, dims[1:])]
        if out_dim is not None:
            layers.append(_init(nn.Linear(dims[-1], out_dim), out_gain))
        self.layers = nn.ModuleList(layers)
        self.num_activated = len(hiddens)
        self.activation = ACTIVATION_FNS[activation]
        self.activation_name = activation
        self.out_dim = out_dim if out_dim is not None else dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = nn.functional.linear(x, layer.weight, layer.bias)
            if i < self.num_activated:
                x = self.activation(x)
        return x

    def forward_cached(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """`forward(x)`, keeping what `backward` needs: each layer's input, pre-activation
        and output. Call it under `torch.no_grad()`: the gradient comes from `backward`."""
        cache = []
        activation, num_activated = self.activation, self.num_activated
        for i, layer in enumerate(self.layers):
            z = nn.functional.linear(x, layer.weight, layer.bias)
            y = activation(z) if i < num_activated else z
            cache.append((x, z, y))
            x = y
        return x, cache

    def backward(self, cache: list, grad_out: torch.Tensor, input_grad: bool = True):
        """Backpropagate `grad_out` (d loss / d output) through the cached forward pass.

        Writes d loss / d W = g^T x and d loss / d b = sum_batch g into each layer's
        `.grad` (overwriting it) and returns d loss / d input (None if not `input_grad`).
        The same math autograd would run, in a fraction of its per-op overhead. Call it
        under `torch.no_grad()`.
        """
        act_grad = ACTIVATION_GRADS[self.activation_name]
        g = grad_out
        for i, layer, (x, z, y) in zip(
            range(len(cache) - 1, -1, -1), reversed(self.layers), reversed(cache)
        ):
            weight, bias = layer.weight, layer.bias
            if i < self.num_activated:
                g = act_grad(g, z, y)
            torch.mm(g.t(), x, out=weight.grad)
            torch.sum(g, 0, out=bias.grad)
            if i > 0 or input_grad:
                g = torch.mm(g, weight)
        return g if input_grad else None

    def numpy_fn(self) -> NumpyFn:
        """This MLP with its current weights as a numpy function.

        An EnvRunner step is a batch of a few observations, where numpy's per-op cost
        (about a microsecond) is several times below torch's. Call again after the
        weights change.
        """
        weights = [
            (layer.weight.detach().cpu().numpy().T.copy(), layer.bias.detach().cpu().numpy().copy())
            for layer in self.layers
        ]
        act, num_activated = NUMPY_ACTIVATIONS[self.activation_name], self.num_activated

        def forward(x: np.ndarray) -> np.ndarray:
            for i, (w, b) in enumerate(weights):
                x = x @ w + b
                if i < num_activated:
                    x = act(x)
            return x

        return forward


def mlp(
    in_dim: int,
    hiddens: Sequence[int],
    activation: str = "tanh",
    out_dim: int | None = None,
    out_gain: float = 1.0,
) -> MLP:
    """An MLP with orthogonal init (sqrt(2) gain on hidden layers, `out_gain` on the output)."""
    return MLP(in_dim, hiddens, activation, out_dim, out_gain)


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer
