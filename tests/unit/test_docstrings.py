"""Every public class, function, method and property in `scalerl` has a docstring.

Public means: its name does not start with `_` and the module (or class) that holds it
defines it itself; a method counts as documented when `inspect.getdoc` finds a docstring,
so an override inherits its base method's docstring (the walker in test_config_api)."""

import importlib
import pkgutil

import pytest
from test_config_api import undocumented  # pytest puts tests/unit on sys.path

# Packages whose every module is checked (all of `scalerl`, the top-level modules included).
PACKAGES = ["scalerl"]


def modules(package: str) -> list[str]:
    """Dotted names of `package` and every module below it."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        names.append(info.name)
    return sorted(names)


MODULES = sorted({name for package in PACKAGES for name in modules(package)})


def test_walk_finds_the_package():
    assert "scalerl.algorithms.algorithm_config" in MODULES
    assert len(MODULES) > 50


@pytest.mark.parametrize("module", MODULES)
def test_module_documents_every_public_definition(module):
    assert undocumented(importlib.import_module(module), module) == []


def test_a_removed_docstring_fails_the_check(monkeypatch):
    module = "scalerl.core.learner"
    monkeypatch.setattr(importlib.import_module(module).Learner.get_weights, "__doc__", None)
    with pytest.raises(AssertionError, match="Learner.get_weights"):
        test_module_documents_every_public_definition(module)
