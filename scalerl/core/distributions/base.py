"""The Distribution interface, and how a distribution class is bound to an action space."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch


class Distribution:
    """An action distribution built from the module's `action_dist_inputs` tensor.

    Call sites use only the class: `dist_cls(inputs)` for a batch of inputs, and the
    class methods `input_dim(space)` and `sample_numpy(inputs, rng)`. What a distribution
    needs to know about its action space (a Discrete's `start`, a Box's shape, a Tuple's
    children) lives in class attributes, set on a subclass that `bind` creates per space;
    `dist_class_for(space)` returns such a bound class. Sampling takes an explicit
    generator, so EnvRunners are reproducible from their seed alone.
    """

    # The space this class is bound to (None: the generic class).
    space: ClassVar[gym.Space | None] = None
    # True when logp_grad / entropy_grad / kl_grad are written out. Read from the class's
    # own __dict__ (see `has_hand_gradients`), so that a user's subclass, which may change
    # logp, trains through autograd unless it says otherwise.
    has_gradients: ClassVar[bool] = False

    def __init__(self, inputs: torch.Tensor):
        raise NotImplementedError

    @classmethod
    def bind(cls, space: gym.Space, **attrs: Any) -> type[Distribution]:
        """A subclass of `cls` for `space`, with `attrs` as class attributes."""
        namespace = {
            "space": space,
            "has_gradients": cls.has_hand_gradients(),
            "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}[{space}]",
            **attrs,
        }
        return type(cls.__name__, (cls,), namespace)

    @classmethod
    def has_hand_gradients(cls) -> bool:
        """Whether this very class (not merely a parent) writes out its gradients."""
        return bool(cls.__dict__.get("has_gradients", False))

    @classmethod
    def input_dim(cls, space: gym.Space) -> int:
        """Size of the last axis of the inputs for `space`."""
        raise NotImplementedError

    @classmethod
    def log_std_indices(cls, space: gym.Space) -> list[int]:
        """Positions in the inputs that are Gaussian log-stds (for their initial value)."""
        return []

    @classmethod
    def from_logits(cls, logits: torch.Tensor) -> Distribution:
        """RLlib's constructor name: the distribution of these inputs (`cls(logits)`)."""
        return cls(logits)

    def to_deterministic(self) -> Deterministic:
        """RLlib's deterministic view: a distribution whose `sample()` is this one's
        `deterministic_sample()` (argmax, mean)."""
        return Deterministic(self)

    def sample(self, generator: torch.Generator | None = None) -> Any:
        """Draw one action per row (nested like the action space), not differentiable.

        Args:
            generator: Optional torch RNG, so that EnvRunners can sample reproducibly.
        """
        raise NotImplementedError

    def deterministic_sample(self) -> Any:
        """The distribution's most likely action per row (mode; the mean for a Gaussian)."""
        raise NotImplementedError

    @classmethod
    def sample_numpy(cls, inputs: np.ndarray, rng: np.random.Generator) -> Any:
        """Sample from the distribution with inputs `inputs`, on the host.

        EnvRunners use this: for the small batches of one env step, numpy's per-call
        overhead is several times lower than torch's.
        """
        raise NotImplementedError

    def logp(self, actions: Any) -> torch.Tensor:
        """log pi(a) of `actions` (nested like the action space), one value per row: shape [B]."""
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        """The entropy H[pi] per row, summed over action dimensions: shape [B]."""
        raise NotImplementedError

    def kl(self, other: Distribution) -> torch.Tensor:
        """KL[self || other], per sample."""
        raise NotImplementedError

    # Gradients with respect to this distribution's inputs, for learners that backpropagate
    # by hand (see `scalerl.algorithms.ppo.manual_gradients`). Each is per sample: [B, D].
    def logp_grad(self, actions: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a), d log pi(a) / d inputs)."""
        raise NotImplementedError

    def entropy_grad(self) -> torch.Tensor:
        """d H[pi] / d inputs."""
        raise NotImplementedError

    def kl_grad(self, old: Distribution) -> torch.Tensor:
        """d KL[old || self] / d (self's inputs)."""
        raise NotImplementedError


def flat_size(shape: tuple[int, ...]) -> int:
    """Number of elements of an array with this `shape` (1 for a scalar shape `()`)."""
    return int(math.prod(shape))


def flatten_event(x: Any, shape: tuple[int, ...] | None) -> Any:
    """[..., *shape] -> [..., prod(shape)] (tensor or array); unchanged when shape is None."""
    if shape is None:
        return x
    return x.reshape(*x.shape[: x.ndim - len(shape)], flat_size(shape))


def unflatten_event(x: Any, shape: tuple[int, ...] | None) -> Any:
    """[..., prod(shape)] -> [..., *shape]; unchanged when shape is None."""
    if shape is None:
        return x
    return x.reshape(*x.shape[:-1], *shape)


class Deterministic:
    """What `Distribution.to_deterministic()` returns: `sample()` gives the wrapped
    distribution's deterministic sample (RLlib's `TorchDeterministic`)."""

    def __init__(self, dist: Distribution):
        self.dist = dist

    def sample(self, generator: torch.Generator | None = None) -> Any:
        """The wrapped distribution's `deterministic_sample()`."""
        return self.dist.deterministic_sample()

    def deterministic_sample(self) -> Any:
        """The same as `sample()`."""
        return self.dist.deterministic_sample()
