"""Categorical (Discrete actions) and MultiCategorical (MultiDiscrete actions)."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch

from scalerl.core.distributions.base import Distribution, flatten_event, unflatten_event


class Categorical(Distribution):
    """Categorical over `n` actions from unnormalized logits.

    Actions are `start + index`: bound to a `Discrete(n, start=s)`, `start` is s.
    """

    has_gradients = True
    start: ClassVar[int] = 0

    def __init__(self, inputs: torch.Tensor):
        self.logits = torch.log_softmax(inputs, dim=-1)

    @classmethod
    def input_dim(cls, space: gym.Space) -> int:
        return int(space.n)

    def _index(self, actions: torch.Tensor) -> torch.Tensor:
        actions = actions.long()
        return actions - self.start if self.start else actions

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One action index per row by the Gumbel-max trick, offset by the space's `start`."""
        # Gumbel-max: argmax(logits + G) is a categorical sample, and far cheaper than
        # torch.distributions for the small batches of an EnvRunner step.
        u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device).clamp_(
            1e-20, 1.0
        )
        index = (self.logits - torch.log(-torch.log(u))).argmax(dim=-1)
        return index + self.start if self.start else index

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        index = (inputs + rng.gumbel(size=inputs.shape)).argmax(axis=-1)
        return index + cls.start if cls.start else index

    def deterministic_sample(self) -> torch.Tensor:
        """The argmax action per row, offset by the space's `start`."""
        index = self.logits.argmax(dim=-1)
        return index + self.start if self.start else index

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """The log-softmax probability of each row's action (actions include the `start` offset)."""
        return self.logits.gather(-1, self._index(actions).unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """H = -sum p log p per row; masked actions (logit -inf) contribute 0."""
        # Masked actions have logit -inf: clamp so that 0 * log 0 counts as 0, not NaN.
        logits = self.logits.clamp(min=torch.finfo(self.logits.dtype).min)
        return -(logits.exp() * logits).sum(dim=-1)

    def kl(self, other: Categorical) -> torch.Tensor:
        lo = torch.finfo(self.logits.dtype).min
        p, q = self.logits.clamp(min=lo), other.logits.clamp(min=lo)
        return (p.exp() * (p - q)).sum(dim=-1)

    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # log p_a = z_a - logsumexp(z), so d/dz = onehot(a) - softmax(z).
        onehot = torch.zeros_like(self.logits).scatter_(-1, self._index(actions).unsqueeze(-1), 1.0)
        return (self.logits * onehot).sum(dim=-1), onehot.sub_(self.logits.exp())

    def entropy_grad(self) -> torch.Tensor:
        # H = -sum_j p_j log p_j, so dH/dz_k = -p_k (log p_k + H).
        logits = self.logits.clamp(min=torch.finfo(self.logits.dtype).min)
        p = logits.exp()
        entropy = -(p * logits).sum(dim=-1, keepdim=True)
        return -p * (logits + entropy)

    def kl_grad(self, old: Categorical) -> torch.Tensor:
        # KL = sum_j q_j (log q_j - log p_j) with q fixed, so d/dz_k = p_k - q_k.
        return self.logits.exp() - old.logits.exp()


class MultiCategorical(Distribution):
    """Independent categoricals, one per component of a MultiDiscrete space.

    Inputs are the components' logits concatenated (sum(nvec) values); actions have the
    space's shape (nvec may have any shape), `start + index` per component.
    """

    has_gradients = True
    nvec: ClassVar[tuple[int, ...]] = ()  # flattened
    start: ClassVar[tuple[int, ...]] = ()  # flattened, one per component
    shape: ClassVar[tuple[int, ...] | None] = None
    dtype: ClassVar[np.dtype] = np.dtype(np.int64)

    def __init__(self, inputs: torch.Tensor):
        self.cats = [Categorical(x) for x in inputs.split(self.nvec, dim=-1)]

    @classmethod
    def for_space(cls, space: gym.spaces.MultiDiscrete) -> type[MultiCategorical]:
        """This class bound to a MultiDiscrete `space`: one Categorical per element of `nvec`."""
        return cls.bind(
            space,
            nvec=tuple(int(n) for n in space.nvec.flat),
            start=tuple(int(s) for s in space.start.flat),
            shape=tuple(space.shape),
            dtype=np.dtype(space.dtype),
        )

    @classmethod
    def input_dim(cls, space: gym.Space) -> int:
        return int(np.sum(space.nvec))

    def _indices(self, actions: torch.Tensor) -> torch.Tensor:
        """[..., *shape] actions -> [..., k] component indices (start subtracted)."""
        index = flatten_event(actions.long(), self.shape)
        if any(self.start):
            index = index - torch.as_tensor(self.start, device=index.device)
        return index

    def _actions(self, indices: list[torch.Tensor]) -> torch.Tensor:
        actions = torch.stack(indices, dim=-1)
        if any(self.start):
            actions = actions + torch.as_tensor(self.start, device=actions.device)
        return unflatten_event(actions, self.shape)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample from each element's Categorical, assembled into the space's shape and dtype."""
        return self._actions([c.sample(generator) for c in self.cats])

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        parts = np.split(inputs, np.cumsum(cls.nvec)[:-1], axis=-1)
        index = np.stack([(x + rng.gumbel(size=x.shape)).argmax(axis=-1) for x in parts], -1)
        return unflatten_event(index + np.asarray(cls.start), cls.shape).astype(cls.dtype)

    def deterministic_sample(self) -> torch.Tensor:
        """Each element's argmax action, assembled into the space's shape and dtype."""
        return self._actions([c.deterministic_sample() for c in self.cats])

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """Sum of the elements' log-probabilities (they are independent), per row."""
        index = self._indices(actions)
        return sum(c.logp(index[..., i]) for i, c in enumerate(self.cats))

    def entropy(self) -> torch.Tensor:
        """Sum of the elements' entropies (they are independent), per row."""
        return sum(c.entropy() for c in self.cats)

    def kl(self, other: MultiCategorical) -> torch.Tensor:
        return sum(c.kl(o) for c, o in zip(self.cats, other.cats))

    def logp_grad(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = self._indices(actions)
        parts = [c.logp_grad(index[..., i]) for i, c in enumerate(self.cats)]
        return sum(p[0] for p in parts), torch.cat([p[1] for p in parts], dim=-1)

    def entropy_grad(self) -> torch.Tensor:
        return torch.cat([c.entropy_grad() for c in self.cats], dim=-1)

    def kl_grad(self, old: MultiCategorical) -> torch.Tensor:
        return torch.cat([c.kl_grad(o) for c, o in zip(self.cats, old.cats)], dim=-1)
