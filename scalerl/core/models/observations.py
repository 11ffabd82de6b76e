"""From any observation space to one flat feature vector per observation.

Each leaf of the (possibly nested) space becomes features:

    Discrete                  one-hot
    MultiDiscrete             one one-hot per component, concatenated
    MultiBinary               the bits as floats
    Box of rank 3 (H, W, C)   a CNN (`conv_filters`, `conv_activation`); uint8 scaled to [0, 1]
    any other Box             flattened

and the leaves' features are concatenated in the space's order (Tuple order, Dict keys in
the space's order). Without image leaves this has no parameters and a numpy twin, which
the EnvRunners use for fast inference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from scalerl.core.models.encoders import ACTIVATION_FNS, NumpyFn
from scalerl.core.models.initializers import init_layers
from scalerl.utils.errors import ConfigError

# (out_channels, kernel, stride) per conv layer; padding keeps the size before striding.
DEFAULT_CONV_FILTERS = [[16, 4, 2], [32, 4, 2], [64, 3, 2]]
MASK_KEY, MASKED_OBS_KEY = "action_mask", "observations"
FLOAT_MIN = float(torch.finfo(torch.float32).min)
LEAF_SPACES = (
    gym.spaces.Box,
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
)


def is_image_space(space: gym.Space) -> bool:
    """Whether `space` is a Box with three axes (H, W, C), which gets a CNN encoder."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3


def is_action_mask_space(space: gym.Space) -> bool:
    """RLlib's convention: Dict(action_mask=Box(0, 1, (n,)), observations=<any space>)."""
    return isinstance(space, gym.spaces.Dict) and set(space.spaces) == {MASK_KEY, MASKED_OBS_KEY}


def space_leaves(space: gym.Space, path: tuple = ()) -> list[tuple[tuple, gym.Space]]:
    """(path, leaf space) for every leaf, in the order observations are flattened."""
    if isinstance(space, gym.spaces.Dict):
        return [x for k, s in space.spaces.items() for x in space_leaves(s, (*path, k))]
    if isinstance(space, gym.spaces.Tuple):
        return [x for i, s in enumerate(space.spaces) for x in space_leaves(s, (*path, i))]
    if isinstance(space, LEAF_SPACES):
        return [(path, space)]
    raise ConfigError(
        f"Observation space {space} is not supported. Supported are Box (of any rank; rank 3 "
        "is an image), Discrete, MultiDiscrete, MultiBinary, and Tuple/Dict of these, nested "
        "to any depth."
    )


def _get(obs: Any, path: tuple) -> Any:
    for key in path:
        obs = obs[key]
    return obs


class ObsPreprocessor(nn.Module):
    """Nested observations [B, ...] -> features [B, out_dim] (see the module docstring)."""

    def __init__(self, space: gym.Space, model_config: dict[str, Any] | None = None):
        super().__init__()
        cfg = model_config or {}
        self.leaves = space_leaves(space)
        self.cnns = nn.ModuleDict()
        dims = []
        for i, (_, leaf) in enumerate(self.leaves):
            if is_image_space(leaf):
                cnn = CNN(
                    leaf,
                    cfg.get("conv_filters") or DEFAULT_CONV_FILTERS,
                    cfg.get("conv_activation", "relu"),
                )
                self.cnns[str(i)] = cnn
                dims.append(cnn.out_dim)
            else:
                dims.append(_flat_dim(leaf))
        self.out_dim = int(sum(dims))
        self.has_params = len(self.cnns) > 0
        init_layers([self.cnns], cfg, "conv")  # `conv_kernel_initializer`, ...

    def forward(self, obs: Any) -> torch.Tensor:
        parts = []
        for i, (path, leaf) in enumerate(self.leaves):
            x = _get(obs, path)
            cnn = self.cnns[str(i)] if str(i) in self.cnns else None
            parts.append(cnn(x) if cnn is not None else _flatten_leaf(x, leaf))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def numpy_fn(self) -> NumpyFn | None:
        """The same mapping in numpy (None with image leaves: a CNN runs in torch)."""
        if self.has_params:
            return None
        fns = [(path, _numpy_flatten_fn(leaf)) for path, leaf in self.leaves]
        if len(fns) == 1 and not fns[0][0]:
            return fns[0][1]
        return lambda obs: np.concatenate([fn(_get(obs, path)) for path, fn in fns], axis=-1)


def _flat_dim(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(math.prod(space.shape))


def _offsets(space: gym.spaces.MultiDiscrete) -> tuple[np.ndarray, np.ndarray]:
    """Per component: where its one-hot starts in the concatenation, and its `start`."""
    nvec = np.asarray(space.nvec).reshape(-1)
    start = np.asarray(getattr(space, "start", np.zeros_like(nvec))).reshape(-1)
    return np.concatenate([[0], np.cumsum(nvec)[:-1]]), start


def _flatten_leaf(x: torch.Tensor, space: gym.Space) -> torch.Tensor:
    if isinstance(space, gym.spaces.Discrete):
        return nn.functional.one_hot(x.long() - int(space.start), int(space.n)).float()
    if isinstance(space, gym.spaces.MultiDiscrete):
        offsets, start = _offsets(space)
        index = x.long().reshape(x.shape[0], -1) - torch.as_tensor(start, device=x.device)
        index = index + torch.as_tensor(offsets, device=x.device)
        out = torch.zeros(x.shape[0], _flat_dim(space), device=x.device)
        return out.scatter_(1, index, 1.0)
    return x.reshape(x.shape[0], -1).float()


def _numpy_flatten_fn(space: gym.Space) -> NumpyFn:
    if isinstance(space, gym.spaces.Discrete):
        eye, start = np.eye(int(space.n), dtype=np.float32), int(space.start)
        return lambda x: eye[np.asarray(x, dtype=np.int64) - start]
    if isinstance(space, gym.spaces.MultiDiscrete):
        offsets, start = _offsets(space)
        dim = _flat_dim(space)

        def one_hots(x: np.ndarray) -> np.ndarray:
            index = np.asarray(x, dtype=np.int64).reshape(len(x), -1) - start + offsets
            out = np.zeros((len(x), dim), dtype=np.float32)
            np.put_along_axis(out, index, 1.0, axis=1)
            return out

        return one_hots
    return lambda x: x.reshape(x.shape[0], -1).astype(np.float32, copy=False)


class CNN(nn.Module):
    """Conv layers over an (H, W, C) image, flattened: `filters` are (channels, kernel, stride)."""

    def __init__(self, space: gym.spaces.Box, filters: Sequence[Sequence[int]], activation: str):
        super().__init__()
        if activation not in ACTIVATION_FNS:
            raise ConfigError(
                f"`conv_activation={activation!r}` is not known: use one of {list(ACTIVATION_FNS)}."
            )
        h, w, c = space.shape
        self.scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        layers: list[nn.Module] = []
        for spec in filters:
            if len(spec) != 3:
                raise ConfigError(
                    f"Each `conv_filters` entry is [out_channels, kernel, stride]; got {spec}."
                )
            # RLlib writes kernels as [k, k]; square kernels only.
            out_c, kernel, stride = (int(v[0] if isinstance(v, (list, tuple)) else v) for v in spec)
            layers.append(nn.Conv2d(c, out_c, kernel, stride, padding=kernel // 2))
            c = out_c
        self.convs = nn.ModuleList(layers)
        self.activation: Callable[[torch.Tensor], torch.Tensor] = ACTIVATION_FNS[activation]
        with torch.no_grad():
            self.out_dim = int(self._features(torch.zeros(1, space.shape[2], h, w)).shape[1])

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.activation(conv(x))
        return x.flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        if self.scale != 1.0:
            x = x * self.scale
        return self._features(x)
