"""Adam (Kingma & Ba, 2015) over one flat parameter buffer.

`torch.optim` imports `torch._dynamo` on first use, which costs over a second of
start-up. Here the module's parameters and gradients are views into two flat
buffers, so a step is a handful of whole-buffer ops instead of several per
parameter tensor (the fixed cost dominates for the small networks of RL), and the
state checkpoints as plain named tensors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def flatten_parameters(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """Copy `params` into one new flat buffer and make each a view into it (returned).

    A whole-buffer op on the result then updates every parameter at once (an Adam step,
    a Polyak average of a target network).
    """
    params = list(params)
    with torch.no_grad():
        # (A module without trainable weights, e.g. a random policy, gets empty buffers.)
        flat = torch.cat([p.detach().reshape(-1) for p in params] or [torch.zeros(0)])
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        offset += n
    return flat


class Adam:
    """m_t = b1 m + (1-b1) g;  v_t = b2 v + (1-b2) g^2;
    theta -= lr * (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + eps).

    Parameters become views into `flat_param` and their `.grad` views into `flat_grad`;
    a parameter that gets no gradient in a step counts as having a zero gradient.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = [p for p in params if p.requires_grad]
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.t = 0
        self.flat_param = flatten_parameters(self.params)
        self.flat_grad = torch.zeros_like(self.flat_param)
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = self.flat_grad[offset : offset + n].view_as(p)
            offset += n
        self.exp_avg = torch.zeros_like(self.flat_param)
        self.exp_avg_sq = torch.zeros_like(self.flat_param)

    def zero_grad(self) -> None:
        """Zero the gradients (one flat buffer that every parameter's `.grad` is a view of)."""
        # Autograd accumulates into the existing `.grad` views, so zeroing the buffer suffices.
        self.flat_grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One bias-corrected Adam step (Kingma & Ba) on the flat parameter buffer."""
        b1, b2 = self.betas
        self.t += 1
        g = self.flat_grad
        self.exp_avg.lerp_(g, 1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = self.exp_avg_sq.sqrt().div_(math.sqrt(1 - b2**self.t)).add_(self.eps)
        self.flat_param.addcdiv_(self.exp_avg, denom, value=-self.lr / (1 - b1**self.t))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The moment estimates {"exp_avg": m, "exp_avg_sq": v}, for checkpoints."""
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def hyperparameters(self) -> dict:
        """JSON-able settings and step count: {"lr", "betas", "eps", "t"}, for checkpoints."""
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "t": self.t}

    def load_state(self, tensors: dict[str, torch.Tensor], hyper: dict) -> None:
        """Restore the moments and hyperparameters written by `state_tensors` / `hyperparameters`.

        Raises:
            ValueError: If the tensors' names or sizes do not match this optimizer's.
        """
        if set(tensors) != {"exp_avg", "exp_avg_sq"}:
            raise ValueError(
                f"optimizer state has tensors {sorted(tensors)}, expected ['exp_avg', 'exp_avg_sq']"
            )
        for name in ("exp_avg", "exp_avg_sq"):
            t = tensors[name]
            if t.shape != self.flat_param.shape:
                raise ValueError(
                    f"optimizer `{name}` has shape {tuple(t.shape)}, the module's "
                    f"parameters have {self.flat_param.numel()} elements"
                )
            getattr(self, name).copy_(t)
        self.lr, self.betas, self.eps = hyper["lr"], tuple(hyper["betas"]), hyper["eps"]
        self.t = int(hyper["t"])
