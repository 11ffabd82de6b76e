"""Observation filters for multi-agent runs: one `MeanStdFilter` per module.

Agents mapped to one module share its filter, which is updated from the observations of
those agents. The object has the single filter's state methods (`get_state`,
`get_delta_state`, `reset_delta`, `set_state`, `merge_states`), each over all modules, so
`EnvRunnerGroup` merges and syncs it and checkpoints store it (`observation_filter.json`)
exactly as the single-agent filter.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from scalerl.connectors.env_to_module.mean_std_filter import (
    MeanStdFilter,
    build_observation_filter,
)

STATE_FORMAT = "scalerl-multi-agent-mean-std-filter"


class MultiAgentMeanStdFilter:
    """{module id: MeanStdFilter}, built from the `observation_filter` setting.

    Args:
        setting: The `observation_filter` setting ("MeanStdFilter" or its stored dict).
        spaces: {module id: observation space}.
    """

    def __init__(self, setting: Any, spaces: dict[str, gym.Space]) -> None:
        self.setting = setting
        self.filters: dict[str, MeanStdFilter] = {}
        for mid, space in spaces.items():
            self.add_module(mid, space)

    def __getitem__(self, module_id: str) -> MeanStdFilter:
        return self.filters[module_id]

    def __contains__(self, module_id: object) -> bool:
        return module_id in self.filters

    def add_module(self, module_id: str, space: gym.Space) -> None:
        """A fresh filter for a new module (kept if the module has one already)."""
        if module_id not in self.filters:
            self.filters[module_id] = build_observation_filter(self.setting, space)

    def remove_module(self, module_id: str) -> None:
        """Drop a removed module's filter."""
        self.filters.pop(module_id, None)

    # -- state -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Every module's running statistics, as JSON-able data."""
        return self._state({mid: f.get_state() for mid, f in self.filters.items()})

    def get_delta_state(self) -> dict[str, Any]:
        """Every module's statistics gathered since the last `reset_delta()`."""
        return self._state({mid: f.get_delta_state() for mid, f in self.filters.items()})

    @staticmethod
    def _state(modules: dict[str, Any]) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "modules": modules}

    def reset_delta(self) -> None:
        """Start a new delta in every module's filter."""
        for f in self.filters.values():
            f.reset_delta()

    def set_state(self, state: dict[str, Any]) -> None:
        """Replace every module's running statistics. Raises ValueError unless the state
        holds exactly this filter's modules, each fitting its observation space."""
        modules = self._modules(state)
        if set(modules) != set(self.filters):
            raise ValueError(
                f"the state holds filters for modules {sorted(modules)}, but this run has "
                f"modules {sorted(self.filters)}"
            )
        for mid, f in self.filters.items():
            try:
                f.set_state(modules[mid])
            except ValueError as e:
                raise ValueError(f"module `{mid}`: {e}") from None

    def merge_states(self, states: list[dict[str, Any]]) -> None:
        """Fold other copies' delta states into the running statistics, per module (a
        module this filter no longer has is skipped: it was removed meanwhile)."""
        for state in states:
            for mid, part in self._modules(state).items():
                if mid in self.filters:
                    self.filters[mid].merge_states([part])

    @staticmethod
    def _modules(state: Any) -> dict[str, Any]:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(
                f"not a multi-agent MeanStdFilter state (expected format {STATE_FORMAT!r})"
            )
        modules = state.get("modules")
        if not isinstance(modules, dict):
            raise ValueError("`modules` must be an object {module id: filter state}")
        return modules


def build_multi_agent_filter(setting: Any, spaces: dict[str, gym.Space]) -> Any:
    """The per-module filters an `observation_filter` setting asks for (None: "NoFilter")."""
    if setting == "NoFilter":
        return None
    return MultiAgentMeanStdFilter(setting, spaces)


def build_filter_for_spec(setting: Any, module_spec: Any) -> Any:
    """The central filter for a module spec: per module for a MultiRLModuleSpec, else one
    `MeanStdFilter` (None for "NoFilter")."""
    specs = getattr(module_spec, "rl_module_specs", None)
    if specs is None:
        return build_observation_filter(setting, module_spec.observation_space)
    return build_multi_agent_filter(setting, {m: s.observation_space for m, s in specs.items()})
