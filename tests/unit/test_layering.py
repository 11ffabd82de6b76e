"""The package layers import downwards only: utils <- core <- env <- algorithms <- cli.

`core` (modules, learners) must not know about `env` (sampling) or `algorithms`, so that
every algorithm stands on the same core (ARCHITECTURE.md, issue 12). `utils` may use the
column names of `core.columns`, a table of plain strings."""

from __future__ import annotations

import ast
from pathlib import Path

import scalerl

ROOT = Path(scalerl.__file__).parent
# package -> packages it must not import (directly or lazily inside a function).
ALLOWED = ("scalerl.core.columns",)
FORBIDDEN = {
    "utils": ("scalerl.core", "scalerl.env", "scalerl.algorithms", "scalerl.connectors"),
    "core": ("scalerl.env", "scalerl.algorithms", "scalerl.cli"),
    "connectors": ("scalerl.env", "scalerl.algorithms", "scalerl.cli"),
    "env": ("scalerl.algorithms", "scalerl.cli"),
}


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_import_against_the_layers():
    offending = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_modules(path):
                if name.startswith(forbidden) and not name.startswith(ALLOWED):
                    offending.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    assert not offending, "\n".join(offending)
