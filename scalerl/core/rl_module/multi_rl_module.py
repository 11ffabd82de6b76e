"""MultiRLModule: one RLModule per policy (module id), as RLlib's `MultiRLModule`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from scalerl.core.rl_module.rl_module import RLModule, RLModuleSpec
from scalerl.utils.errors import did_you_mean


class MultiRLModule(nn.Module):
    """A dict of modules keyed by module id: `multi["runner"]`, `multi.keys()`, ..."""

    def __init__(self, modules: dict[str, RLModule] | None = None):
        super().__init__()
        self._rl_modules = nn.ModuleDict(modules or {})

    def __getitem__(self, module_id: str) -> RLModule:
        if module_id not in self._rl_modules:
            known = list(self._rl_modules)
            raise KeyError(
                f"No module `{module_id}`.{did_you_mean(module_id, known)} Modules: {known}."
            )
        return self._rl_modules[module_id]

    def __contains__(self, module_id: object) -> bool:
        return module_id in self._rl_modules

    def __iter__(self) -> Iterator[str]:
        return iter(self._rl_modules)

    def __len__(self) -> int:
        return len(self._rl_modules)

    def keys(self) -> list[str]:
        """The module ids, in insertion order."""
        return list(self._rl_modules)

    def items(self) -> list[tuple[str, RLModule]]:
        """(module id, RLModule) pairs, in insertion order."""
        return list(self._rl_modules.items())

    def add_module(self, module_id: str, module: RLModule) -> None:  # type: ignore[override]
        self._rl_modules[module_id] = module

    def remove_module(self, module_id: str) -> None:
        """Remove the module `module_id` (KeyError if there is none)."""
        self[module_id]  # a clear KeyError for an unknown id
        del self._rl_modules[module_id]

    def get_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Module id -> that module's `get_state()` (detached tensor copies of its weights)."""
        return {mid: m.get_state() for mid, m in self._rl_modules.items()}

    def set_state(self, state: dict[str, dict[str, Any]]) -> None:
        """Load weights given as module id -> state dict into the matching modules."""
        for mid, weights in state.items():
            self[mid].set_state(weights)


@dataclass
class MultiRLModuleSpec:
    """One `RLModuleSpec` per module id (RLlib's `MultiRLModuleSpec`)."""

    rl_module_specs: dict[str, RLModuleSpec] = field(default_factory=dict)

    def build(self) -> MultiRLModule:
        """A MultiRLModule with each spec built, keyed by module id."""
        return MultiRLModule({mid: spec.build() for mid, spec in self.rl_module_specs.items()})

    # The single-agent path asks a spec for its spaces (observation filters); a
    # multi-agent spec has one per module.
    observation_space = None
    action_space = None
