"""Connect scalerl to Ray Tune when, and only when, the process uses Tune.

`import scalerl` never imports Ray Tune (about a second of start-up). Once scalerl's
configs are imported and `ray.tune` is imported too, in either order, this module imports
`scalerl.tune`, which makes scalerl's algorithm names and classes Tune trainables (see
`scalerl/tune/__init__.py`). If `ray.tune` is already imported, that happens at once;
otherwise a one-shot import hook runs it right after `ray.tune` has finished importing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings
from typing import Any

_TUNE = "ray.tune"


def link_to_tune() -> None:
    """Make scalerl's algorithms Tune trainables now if `ray.tune` is imported, else as
    soon as it is (never imports `ray.tune` itself)."""
    if _TUNE in sys.modules and not _importing(sys.modules[_TUNE]):
        _link()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(_TUNE, _link))


def _importing(module: Any) -> bool:
    """Whether `module` is still executing its own import."""
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _link() -> None:
    try:
        importlib.import_module("scalerl.tune")
    except Exception as e:  # never break the user's `import ray.tune`
        warnings.warn(
            f"scalerl could not register its algorithms with Ray Tune ({type(e).__name__}: "
            f"{e}); `import scalerl.tune` to see the full error.",
            RuntimeWarning,
            stacklevel=2,
        )


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when module `name` is about to be imported, it wraps the real
    loader so that `callback()` runs once the module has executed; then it removes itself."""

    def __init__(self, name: str, callback: Any):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """The spec the other finders give for `fullname`, with its loader wrapped."""
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenCall(spec.loader, self.callback)
                return spec
        return None


class _ThenCall(importlib.abc.Loader):
    """A loader that runs `callback()` after the real loader executed the module."""

    def __init__(self, loader: Any, callback: Any):
        self.loader = loader
        self.callback = callback

    def create_module(self, spec: Any) -> Any:
        """The real loader's module object (None: Python's default)."""
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        """Execute the module with the real loader, then call the callback."""
        self.loader.exec_module(module)
        self.callback()

    def __getattr__(self, name: str) -> Any:  # get_data, is_package, ... of the real loader
        return getattr(self.loader, name)
