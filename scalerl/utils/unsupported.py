"""Clear errors for RLlib's module paths and names that scalerl does not have yet.

Code written for RLlib imports from `ray.rllib...`; after the import swap, a path that
scalerl lacks would otherwise end in a bare `ModuleNotFoundError: No module named
'scalerl.algorithms.appo'`. `install_finder()` (called by `import scalerl`) adds a last
entry to `sys.meta_path` that turns such a miss into an error naming the feature, and
`missing_names(...)` gives a package a `__getattr__` doing the same for a name RLlib's
package has and scalerl's does not.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable
from typing import Any

# Module path below `scalerl.` (a prefix) -> the feature it stands for in RLlib.
FEATURES = {
    "algorithms.appo": "the APPO algorithm",
    "algorithms.impala": "the IMPALA algorithm",
    "algorithms.bc": "behavior cloning (offline RL)",
    "algorithms.marwil": "the MARWIL algorithm (offline RL)",
    "algorithms.cql": "the CQL algorithm (offline RL)",
    "algorithms.iql": "the IQL algorithm (offline RL)",
    "algorithms.dreamerv3": "the DreamerV3 algorithm",
    "offline": "offline RL (reading and writing recorded experience)",
    "core.learner.torch": "RLlib's TorchLearner classes (subclass an algorithm's Learner instead)",
    "core.models.catalog": "RLlib's model catalogs (use DefaultModelConfig or a custom RLModule)",
    "connectors.learner": "learner connectors",
    "connectors.module_to_env": "module-to-env connectors",
    "connectors.common": "RLlib's common connector pieces",
    "env.external": "external (client/server) environments",
    "env.policy_server_input": "external (client/server) environments",
    "execution": "RLlib's execution utilities",
    "policy": "the old API stack (Policy classes)",
    "models": "the old API stack (ModelV2)",
    "evaluation": "the old API stack (RolloutWorker)",
    "examples": "this RLlib example",
}
_PREFIX = "scalerl."


def feature_of(module: str) -> str:
    """The feature a missing `scalerl.<path>` module stands for (the longest known prefix)."""
    path = module[len(_PREFIX) :]
    best = ""
    for prefix in FEATURES:
        if (path == prefix or path.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return FEATURES[best] if best else f"the module `ray.rllib.{path}`"


def unsupported_message(what: str, rllib_path: str) -> str:
    """The one wording of every "not supported yet" import error."""
    return (
        f"scalerl does not support {what} yet (`{rllib_path}` has no scalerl counterpart). "
        "See the README's 'RLlib compatibility' section for what is supported."
    )


class _RLlibPathFinder(importlib.abc.MetaPathFinder):
    """The last `sys.meta_path` entry: a `scalerl.*` module no other finder found raises
    a ModuleNotFoundError that names the RLlib feature."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        """Raise for a missing `scalerl.*` module; None (not mine) for anything else."""
        if fullname.startswith(_PREFIX):
            rllib_path = "ray.rllib." + fullname[len(_PREFIX) :]
            raise ModuleNotFoundError(
                unsupported_message(feature_of(fullname), rllib_path), name=fullname
            )
        return None


def install_finder() -> None:
    """Add the finder once (idempotent; `import scalerl` calls it)."""
    if not any(isinstance(f, _RLlibPathFinder) for f in sys.meta_path):
        sys.meta_path.append(_RLlibPathFinder())


def missing_names(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: a name RLlib's package has and scalerl's
    lacks (`names`: name -> feature) raises an ImportError naming the feature, so `from
    scalerl.x import Name` says what is missing; any other name is an AttributeError."""

    def __getattr__(name: str) -> Any:
        if name in names:
            rllib_path = "ray.rllib." + package[len(_PREFIX) :] + "." + name
            raise ImportError(unsupported_message(names[name], rllib_path), name=package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
