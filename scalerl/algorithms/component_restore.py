"""`algo.restore_from_path(path, component=...)`: load one part of a checkpoint (RLlib's
components), so far the RLModule weights, e.g. a pretrained module into a new run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalerl.core import (
    COMPONENT_LEARNER,
    COMPONENT_LEARNER_GROUP,
    COMPONENT_RL_MODULE,
)
from scalerl.core.rl_module.rl_module import RLModule
from scalerl.utils.errors import CheckpointError

_MODULES = f"{COMPONENT_LEARNER_GROUP}/{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}"


def module_ids_of_component(component: str, known: list[str]) -> tuple[list[str], bool]:
    """(module ids, whether `path` holds one directory per module) for a component name:
    "learner_group/learner/rl_module[/<module id>]" or "rl_module[/<module id>]"."""
    name = component.strip("/")
    for prefix in (_MODULES, COMPONENT_RL_MODULE):
        if name == prefix:
            return list(known), True
        if name.startswith(prefix + "/"):
            module_id = name[len(prefix) + 1 :]
            if module_id not in known:
                raise CheckpointError(
                    f"`component={component!r}` names module `{module_id}`, which this "
                    f"algorithm does not have; it has {known}."
                )
            return [module_id], False
    raise CheckpointError(
        f"scalerl does not support restoring the component {component!r} yet: only the "
        f"RLModule weights (`component='{_MODULES}/<module_id>'`, or `'{_MODULES}'` for all "
        "modules) can be restored on their own."
    )


def restore_component(algo: Any, path: Any, component: str, allow_unverified: bool) -> None:
    """Load the weights of the modules `component` names from `path` (a module checkpoint
    as `RLModule.save_to_path` writes it, the directory holding such module directories,
    or a whole algorithm checkpoint) into the learners, then sync the EnvRunners.

    Optimizer state, counters and other components stay as they are (as in RLlib)."""
    module_ids, per_module_dirs = module_ids_of_component(component, algo.learner_group.module_ids)
    root = Path(getattr(getattr(path, "checkpoint", None), "path", path))
    weights = {}
    for module_id in module_ids:
        current = algo.get_module(module_id)
        where = root / module_id if per_module_dirs and (root / module_id).is_dir() else root
        loaded = RLModule.from_checkpoint(
            where, module_id, trusted=(type(current),), allow_unverified=allow_unverified
        )
        weights[module_id] = loaded.get_state()
    algo.learner_group.set_weights(weights)
    algo.env_runner_group.sync_weights(algo.runner_weights())
