"""MultiDistribution: the product distribution of a Tuple or Dict action space."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from scalerl.core.distributions.base import Distribution


class MultiDistribution(Distribution):
    """Independent children, one per sub-space of a Tuple or Dict (nested to any depth).

    Inputs are the children's inputs concatenated in the space's order; actions are a
    tuple (Tuple space) or dict (Dict space) of the children's actions. log pi, the entropy
    and the KL are sums over the children. Hand-written gradients exist when every child
    has them (each child's gradient fills its own slice of the inputs).
    """

    keys: ClassVar[tuple[str, ...] | None] = None  # None: a Tuple space
    children: ClassVar[tuple[type[Distribution], ...]] = ()
    sizes: ClassVar[tuple[int, ...]] = ()  # each child's input size

    def __init__(self, inputs: torch.Tensor):
        parts = inputs.split(self.sizes, dim=-1)
        self.dists = [cls(x) for cls, x in zip(self.children, parts)]

    @classmethod
    def for_space(
        cls, space: gym.spaces.Tuple | gym.spaces.Dict, children: list[type[Distribution]]
    ) -> type[MultiDistribution]:
        """This class bound to a Tuple or Dict `space` whose sub-spaces have the `children` classes.

        Args:
            space: The Tuple or Dict action space.
            children: One distribution class per sub-space, in the space's order.
        """
        subspaces = cls._subspaces(space)
        return cls.bind(
            space,
            keys=tuple(space.spaces) if isinstance(space, gym.spaces.Dict) else None,
            children=tuple(children),
            sizes=tuple(c.input_dim(s) for c, s in zip(children, subspaces)),
            has_gradients=all(c.has_hand_gradients() for c in children),
        )

    @staticmethod
    def _subspaces(space: gym.Space) -> list[gym.Space]:
        if isinstance(space, gym.spaces.Dict):
            return list(space.spaces.values())
        return list(space.spaces)

    @classmethod
    def input_dim(cls, space: gym.Space) -> int:
        if cls.children:
            return sum(cls.sizes)
        raise TypeError("MultiDistribution.input_dim needs a class from `dist_class_for`.")

    @classmethod
    def log_std_indices(cls, space: gym.Space) -> list[int]:
        out, offset = [], 0
        for child, sub, size in zip(cls.children, cls._subspaces(space), cls.sizes):
            out += [offset + i for i in child.log_std_indices(sub)]
            offset += size
        return out

    @classmethod
    def _pack(cls, values: list[Any]) -> Any:
        return dict(zip(cls.keys, values)) if cls.keys is not None else tuple(values)

    def _unpack(self, actions: Any) -> list[Any]:
        if self.keys is not None:
            return [actions[k] for k in self.keys]
        return list(actions)

    def sample(self, generator: torch.Generator | None = None) -> Any:
        """A sample from each child, packed into a tuple or dict like the action space."""
        return self._pack([d.sample(generator) for d in self.dists])

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> Any:
        parts = np.split(inputs, np.cumsum(cls.sizes)[:-1], axis=-1)
        return cls._pack([c.sample_numpy(x, rng) for c, x in zip(cls.children, parts)])

    def deterministic_sample(self) -> Any:
        """Each child's deterministic sample, packed into a tuple or dict like the action space."""
        return self._pack([d.deterministic_sample() for d in self.dists])

    def logp(self, actions: Any) -> torch.Tensor:
        """Sum of the children's log-probabilities of their parts of `actions`, per row."""
        return sum(d.logp(a) for d, a in zip(self.dists, self._unpack(actions)))

    def entropy(self) -> torch.Tensor:
        """Sum of the children's entropies (they are independent), per row."""
        return sum(d.entropy() for d in self.dists)

    def kl(self, other: MultiDistribution) -> torch.Tensor:
        return sum(d.kl(o) for d, o in zip(self.dists, other.dists))

    def logp_grad(self, actions: Any) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [d.logp_grad(a) for d, a in zip(self.dists, self._unpack(actions))]
        return sum(p[0] for p in parts), torch.cat([p[1] for p in parts], dim=-1)

    def entropy_grad(self) -> torch.Tensor:
        return torch.cat([d.entropy_grad() for d in self.dists], dim=-1)

    def kl_grad(self, old: MultiDistribution) -> torch.Tensor:
        return torch.cat([d.kl_grad(o) for d, o in zip(self.dists, old.dists)], dim=-1)
