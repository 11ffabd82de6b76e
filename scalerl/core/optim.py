"""Adam (Kingma & Ba, 2015), written out so its state is plain named tensors.

`torch.optim` imports `torch._dynamo` on first use, which costs over a second of
start-up; this optimizer avoids that and checkpoints without pickle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Adam:
    """m_t = b1 m + (1-b1) g;  v_t = b2 v + (1-b2) g^2;
    theta -= lr * (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + eps)."""

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
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not idx:
            return
        params = [self.params[i] for i in idx]
        grads = [p.grad for p in params]
        m = [self.exp_avg[i] for i in idx]
        v = [self.exp_avg_sq[i] for i in idx]
        b1, b2 = self.betas
        self.t += 1
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, 1 - b2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(1 - b2**self.t))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, -self.lr / (1 - b1**self.t))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"exp_avg.{i}": t for i, t in enumerate(self.exp_avg)}
        out.update({f"exp_avg_sq.{i}": t for i, t in enumerate(self.exp_avg_sq)})
        return out

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "t": self.t}

    def load_state(self, tensors: dict[str, torch.Tensor], hyper: dict) -> None:
        n = len(self.params)
        expected = {f"{k}.{i}" for k in ("exp_avg", "exp_avg_sq") for i in range(n)}
        if set(tensors) != expected:
            raise ValueError(
                f"optimizer state has tensors {sorted(tensors)[:4]}..., expected "
                f"{n} parameters' exp_avg and exp_avg_sq"
            )
        for i, p in enumerate(self.params):
            for name, store in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                t = tensors[f"{name}.{i}"]
                if t.shape != p.shape:
                    raise ValueError(
                        f"optimizer `{name}.{i}` has shape {tuple(t.shape)}, "
                        f"parameter has {tuple(p.shape)}"
                    )
                store[i] = t.to(p.device).clone()
        self.lr, self.betas, self.eps = hyper["lr"], tuple(hyper["betas"]), hyper["eps"]
        self.t = int(hyper["t"])
