"""RLModule: the neural network(s) of one policy, with one forward method per phase."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from scalerl.core.distributions import Distribution, dist_class_for
from scalerl.core.models.initializers import normalize_model_config
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError, ConfigError
from scalerl.utils.spaces import space_from_dict, space_to_dict
from scalerl.utils.trust import qualified_name, register_trusted, resolve


class RLModule(nn.Module):
    """Base class of all modules (RLlib's `TorchRLModule`).

    Subclasses build their layers in `setup()` and implement `_forward()` (used by
    every phase), or the per-phase `_forward_inference`, `_forward_exploration` and
    `_forward_train`. Forward methods take and return dicts of tensors; the action
    distribution's inputs go under `Columns.ACTION_DIST_INPUTS`.
    """

    def __init__(
        self,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        inference_only: bool = False,
        model_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.inference_only = inference_only
        if dataclasses.is_dataclass(model_config) and not isinstance(model_config, type):
            model_config = dataclasses.asdict(model_config)  # a DefaultModelConfig
        self.model_config = normalize_model_config(model_config or {})
        self.setup()

    def setup(self) -> None:
        """Build the layers. Spaces and `model_config` are set when this runs."""

    # Phase entry points (public) and their overridable implementations.
    def forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Outputs for acting greedily (evaluation, serving).

        Subclasses implement `_forward_inference`.

        Returns:
            A dict with at least `Columns.ACTION_DIST_INPUTS`.
        """
        return self._forward_inference(batch, **kwargs)

    def forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Outputs for acting while collecting training data.

        Subclasses implement `_forward_exploration`.

        Returns:
            A dict with at least `Columns.ACTION_DIST_INPUTS`.
        """
        return self._forward_exploration(batch, **kwargs)

    def forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Outputs that a learner's loss needs (action-distribution inputs, values, ...).

        Subclasses implement `_forward_train`.
        """
        return self._forward_train(batch, **kwargs)

    def forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.forward_train(batch, **kwargs)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `_forward()` or the per-phase "
            "`_forward_inference/_forward_exploration/_forward_train`."
        )

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._forward(batch, **kwargs)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._forward(batch, **kwargs)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._forward(batch, **kwargs)

    # Distributions.
    def get_inference_action_dist_cls(self) -> type[Distribution]:
        """The distribution class of `forward_inference`'s outputs (default: by action space)."""
        return dist_class_for(self.action_space)

    def get_exploration_action_dist_cls(self) -> type[Distribution]:
        """The distribution class of `forward_exploration`'s outputs (default: by action space)."""
        return dist_class_for(self.action_space)

    def get_train_action_dist_cls(self) -> type[Distribution]:
        """The distribution class of `forward_train`'s outputs (default: by action space)."""
        return dist_class_for(self.action_space)

    def get_numpy_exploration_fn(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """Optional fast path for EnvRunners: a numpy function from an observation batch to
        the `ACTION_DIST_INPUTS` that `forward_exploration` would return, using the current
        weights. EnvRunners call it again after every weight sync. None (the default) means
        EnvRunners use `forward_exploration`.
        """
        return None

    def get_numpy_recurrent_fn(self) -> Callable | None:
        """The same fast path for stateful modules: a numpy function
        (obs, state, prev_actions, prev_rewards) -> (action_dist_inputs, state_out) for one
        step, batched over envs, without a time axis. None (the default): EnvRunners use
        `forward_exploration`."""
        return None

    def get_initial_state(self) -> dict[str, torch.Tensor]:
        """The recurrent state for the start of one episode, name -> tensor; {} when stateless."""
        return {}

    def is_stateful(self) -> bool:
        """Whether the module is recurrent, i.e. `get_initial_state()` is not empty."""
        return bool(self.get_initial_state())

    # State and checkpoints.
    def get_state(self) -> dict[str, torch.Tensor]:
        """The module's weights as detached tensor copies, keyed by state-dict name."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Load weights given as tensors or numpy arrays (read-only ones from Ray included)."""
        self.load_state_dict(
            {
                k: v if torch.is_tensor(v) else torch.from_numpy(np.array(v))
                for k, v in state.items()
            }
        )

    def save_to_path(self, path: str | Path) -> Path:
        """Write this module alone (spaces, model config, weights) to directory `path`.

        Files already in `path` that a previous checkpoint there did not write are kept."""
        path = ckpt.as_path(path)
        with ckpt.write_checkpoint(path, "RLModule") as tmp:
            self._write(tmp)
        return path

    def _write(self, directory: Path) -> None:
        register_trusted(type(self))  # this process built it: it may load it back
        ckpt.write_json(
            directory / ckpt.MODULE_FILE,
            {
                "format": "scalerl-rl-module",
                "version": 1,
                "module_class": qualified_name(type(self)),
                "observation_space": space_to_dict(self.observation_space),
                "action_space": space_to_dict(self.action_space),
                "model_config": self.model_config,
            },
        )
        ckpt.save_tensors(directory / ckpt.WEIGHTS_FILE, self.state_dict())
        ckpt.write_manifest(directory, "RLModule")

    @classmethod
    def from_checkpoint(
        cls,
        path: Any,
        module_id: str = "default_policy",
        *,
        trusted: tuple | list = (),
        allow_unverified: bool = False,
    ) -> RLModule:
        """Load a module saved by `save_to_path()`, or the module `module_id` of an
        algorithm checkpoint; for a directory of module checkpoints (an algorithm
        checkpoint's `learner_group/learner/rl_module`) a `MultiRLModule` of all of them.

        Every file is checked against the checkpoint's manifest; weights are read with
        safetensors (no pickle). The module class named in the checkpoint must be
        scalerl's own, `cls` itself (`MyModule.from_checkpoint(path)`), registered with
        `scalerl.register_trusted`, or in `trusted`; nothing is imported for it.
        """
        modules = _module_dirs(path)
        if modules:  # RLlib's `.../learner_group/learner/rl_module`: all of its modules
            from scalerl.core.rl_module.multi_rl_module import MultiRLModule

            return MultiRLModule(  # type: ignore[return-value]
                {
                    d.name: cls.from_checkpoint(
                        d, trusted=trusted, allow_unverified=allow_unverified
                    )
                    for d in modules
                }
            )
        view = ckpt.open_checkpoint(path, "Checkpoint", allow_unverified)
        if view.has(ckpt.ALGO_FILE):
            ckpt.check_module_id(module_id)
            modules = "learner_group/learner/rl_module"
            if not view.has(f"{modules}/{module_id}/{ckpt.MODULE_FILE}"):
                raise CheckpointError(
                    f"The checkpoint `{view.path}` has no module `{module_id}`; it has "
                    f"{view.children(modules)}."
                )
            view = view.sub(f"{modules}/{module_id}")
        meta = view.read_json(ckpt.MODULE_FILE, "RLModule checkpoint")
        if meta.get("format") != "scalerl-rl-module":
            raise CheckpointError(f"`{view.path / ckpt.MODULE_FILE}` is not a scalerl module file.")
        name = meta.get("module_class")
        if name == qualified_name(cls) and cls is not RLModule:
            module_cls = cls
        else:
            module_cls = resolve(name, "the RLModule class", (cls, *trusted), RLModule)
        try:
            module = module_cls(
                observation_space=space_from_dict(meta["observation_space"]),
                action_space=space_from_dict(meta["action_space"]),
                model_config=meta["model_config"],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"`{view.path / ckpt.MODULE_FILE}` does not describe a valid module ({e})."
            ) from None
        module.load_weights(
            view.load_tensors(ckpt.WEIGHTS_FILE, "RLModule weights"), view.path / ckpt.WEIGHTS_FILE
        )
        return module

    def load_weights(self, weights: dict[str, torch.Tensor], file: Path) -> None:
        """Load weights read from the checkpoint file `file` (named in errors)."""
        try:
            self.load_state_dict(weights)
        except RuntimeError as e:
            raise CheckpointError(
                f"`{file}` does not fit {type(self).__name__} (different model config or "
                f"spaces?): {e}"
            ) from None


def _module_dirs(path: Any) -> list[Path]:
    """The module checkpoints inside `path` when it is a directory of them (an algorithm
    checkpoint's `learner_group/learner/rl_module`) and no checkpoint itself; else []."""
    root = ckpt.as_path(path)
    if not root.is_dir() or (root / ckpt.MANIFEST_FILE).exists():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / ckpt.MODULE_FILE).is_file())


@dataclass
class RLModuleSpec:
    """How to build a module: its class, spaces and model config (RLlib's `RLModuleSpec`)."""

    module_class: type[RLModule] | None = None
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None
    inference_only: bool = False
    model_config: dict[str, Any] | None = field(default=None)
    # RLlib's: a default catalog class (accepted, see algorithms/default_catalogs.py) and a
    # module checkpoint whose weights `build()` loads.
    catalog_class: Any = None
    load_state_path: str | Path | None = None

    def __post_init__(self) -> None:
        if self.catalog_class is not None and not getattr(
            self.catalog_class, "is_default_catalog", False
        ):
            raise ConfigError(
                f"`RLModuleSpec(catalog_class={self.catalog_class!r})`: scalerl does not "
                "support custom model catalogs yet; give the module's settings in "
                "`model_config` or write a custom RLModule (an algorithm's default catalog, "
                "e.g. PPOCatalog, is accepted and changes nothing)."
            )
        if dataclasses.is_dataclass(self.model_config) and not isinstance(
            self.model_config, type
        ):  # a DefaultModelConfig: kept as the dict of its fields
            self.model_config = dataclasses.asdict(self.model_config)
        if self.model_config is not None:
            self.model_config = normalize_model_config(self.model_config)

    def build(self) -> RLModule:
        """Construct `module_class` with this spec's spaces, `inference_only` and `model_config`
        (and the weights of the module checkpoint `load_state_path`, if set).

        Raises:
            ValueError: If `module_class` is not set.
        """
        if self.module_class is None:
            raise ValueError("RLModuleSpec.module_class is not set.")
        module = self.module_class(
            observation_space=self.observation_space,
            action_space=self.action_space,
            inference_only=self.inference_only,
            model_config=self.model_config or {},
        )
        if self.load_state_path is not None:  # RLlib's pretrained weights
            trusted = (self.module_class,)
            loaded = RLModule.from_checkpoint(self.load_state_path, trusted=trusted)
            module.load_weights(loaded.state_dict(), Path(self.load_state_path))
        return module
