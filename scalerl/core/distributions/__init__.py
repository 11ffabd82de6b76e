"""Action distributions, one class per action-space kind, and `dist_class_for(space)`.

Discrete -> Categorical, MultiDiscrete -> MultiCategorical, MultiBinary -> Bernoulli,
Box (float, any shape) -> DiagGaussian, Tuple/Dict -> MultiDistribution of the children's.
SquashedGaussian is there for algorithms that want bounded Gaussian actions (SAC).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.core.distributions.base import Distribution
from scalerl.core.distributions.bernoulli import Bernoulli
from scalerl.core.distributions.categorical import Categorical, MultiCategorical
from scalerl.core.distributions.composite import MultiDistribution
from scalerl.core.distributions.gaussian import DiagGaussian, SquashedGaussian
from scalerl.utils.errors import ConfigError

__all__ = [
    "Bernoulli",
    "Categorical",
    "DiagGaussian",
    "Distribution",
    "MultiCategorical",
    "MultiDistribution",
    "SquashedGaussian",
    "dist_class_for",
]

SUPPORTED_ACTION_SPACES = (
    "Discrete (categorical), MultiDiscrete (product of categoricals), MultiBinary "
    "(Bernoulli), Box with a float dtype, of any shape (diagonal Gaussian), and Tuple or "
    "Dict of these, nested to any depth"
)

# Bound classes by what they depend on in the space: EnvRunners ask for the class at
# every step, and equal spaces then get the very same class.
_CACHE: dict[Any, type[Distribution]] = {}


def dist_class_for(space: gym.Space) -> type[Distribution]:
    """The default action distribution for an action space, as a class: `cls(inputs)`.

    Raises:
        ConfigError: for a space (or a part of a Tuple/Dict space) no distribution serves.
    """
    key = _space_key(space, space)
    cls = _CACHE.get(key)
    if cls is None:
        cls = _CACHE[key] = _build(space)
    return cls


def _space_key(space: gym.Space, whole: gym.Space) -> Any:
    """A hashable key of everything the distribution depends on; validates the space."""
    if isinstance(space, gym.spaces.Discrete):
        return ("Discrete", int(space.n), int(space.start))
    if isinstance(space, gym.spaces.MultiDiscrete):
        return (
            "MultiDiscrete",
            space.nvec.shape,
            tuple(space.nvec.flat),
            tuple(space.start.flat),
            str(space.dtype),
        )
    if isinstance(space, gym.spaces.MultiBinary):
        return ("MultiBinary", tuple(space.shape))
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return ("Box", tuple(space.shape))
    if isinstance(space, (gym.spaces.Tuple, gym.spaces.Dict)) and len(space.spaces):
        if isinstance(space, gym.spaces.Dict):
            return ("Dict", tuple((k, _space_key(s, whole)) for k, s in space.spaces.items()))
        return ("Tuple", tuple(_space_key(s, whole) for s in space.spaces))
    inside = "" if space is whole else f" (inside action space {whole})"
    hint = (
        " For integer actions use Discrete or MultiDiscrete."
        if isinstance(space, gym.spaces.Box)
        else ""
    )
    raise ConfigError(
        f"Action space {space}{inside} has no action distribution. Supported are "
        f"{SUPPORTED_ACTION_SPACES}.{hint}"
    )


def _build(space: gym.Space) -> type[Distribution]:
    if isinstance(space, gym.spaces.Discrete):
        return Categorical.bind(space, start=int(space.start)) if space.start else Categorical
    if isinstance(space, gym.spaces.MultiDiscrete):
        return MultiCategorical.for_space(space)
    if isinstance(space, gym.spaces.MultiBinary):
        return Bernoulli.for_space(space)
    if isinstance(space, gym.spaces.Box):
        return DiagGaussian.for_space(space)
    subspaces = space.spaces.values() if isinstance(space, gym.spaces.Dict) else space.spaces
    return MultiDistribution.for_space(space, [dist_class_for(s) for s in subspaces])
