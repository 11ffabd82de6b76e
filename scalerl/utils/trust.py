"""Which classes and functions a checkpoint may name.

A checkpoint stores classes (an env class, a custom RLModule, a policy mapping function) as
`package.module:QualName` strings. Loading resolves such a name only against what this
process has vouched for, and never imports a module for it:

- scalerl's own classes of the kind the name is for (an env class for an env, an
  RLModule subclass for a module), defined in `scalerl.*`;
- objects registered with `register_trusted(...)` (and env creators given to
  `register_env`), or given to a config in this process (saving registers them);
- objects passed by the caller, e.g. `Algorithm.from_checkpoint(path, trusted=[MyEnv])`.

Anything else is refused with an error that says how to allow it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from scalerl.utils.errors import CheckpointError

_TRUSTED: dict[str, Any] = {}


def qualified_name(obj: Any) -> str:
    """`package.module:QualName`, the form checkpoints store."""
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"


class StoredName(str):
    """A `package.module:QualName` string that holds the object it names, as
    `config.to_dict()` writes names inside `carrying_objects()` (scalerl.tune does, for
    the `param_space` it gives Ray Tune).

    Ray sends a trial's config to the trial's process with its own pickling; there a
    StoredName resolves to the object it holds, so a class or function given to the config
    (an env class, a callbacks class, an RLModule) works in a process where nothing was
    registered. Only code in a process that had the object makes one: reading JSON never
    does, so checkpoints resolve names as before.
    """

    obj: Any

    def __new__(cls, obj: Any) -> StoredName:
        """The name of `obj`, holding `obj`."""
        self = super().__new__(cls, qualified_name(obj))
        self.obj = obj
        return self

    def __reduce__(self) -> tuple:
        return (StoredName, (self.obj,))

    def __deepcopy__(self, memo: dict) -> StoredName:
        return self  # immutable; the object is shared, not copied


_CARRY_OBJECTS = contextvars.ContextVar("scalerl_carry_objects", default=False)


@contextlib.contextmanager
def carrying_objects() -> Iterator[None]:
    """Inside, `stored_name` gives `StoredName`s that hold their objects (for a config
    dict that stays in memory and goes to other processes by pickling, never to a file)."""
    token = _CARRY_OBJECTS.set(True)
    try:
        yield
    finally:
        _CARRY_OBJECTS.reset(token)


def stored_name(obj: Any) -> str:
    """The name a config dict stores for `obj`: `qualified_name(obj)`, or inside
    `carrying_objects()` a `StoredName` holding `obj`."""
    return StoredName(obj) if _CARRY_OBJECTS.get() else qualified_name(obj)


def register_trusted(*objs: Any) -> None:
    """Let checkpoints name these classes or functions (e.g. a custom env or RLModule class
    defined in your code), so that loading can use them without importing anything."""
    for obj in objs:
        if not callable(obj):
            raise TypeError(f"register_trusted: {obj!r} is not a class or function.")
        name = qualified_name(obj)
        if "<" not in name:  # a lambda or local function cannot be stored by name anyway
            _TRUSTED[name] = obj


def resolve(
    name: Any,
    what: str,
    trusted: Iterable[Any] = (),
    base: type | None = None,
    own: tuple[type, ...] | None = None,
) -> Any:
    """The class or function that a checkpoint names as `name`.

    Args:
        name: `package.module:QualName` read from a checkpoint.
        what: What the name is for, for the error message (e.g. "the env class").
        trusted: Objects the caller vouches for, matched by their qualified name.
        base: If given, the object must be a subclass of it.
        own: The kinds of scalerl's own classes the name may pick without being
            registered (default: `base`; none without it). A name of any other scalerl
            class or function (e.g. `scalerl.cli:main` as an env creator) is refused.

    Raises:
        CheckpointError: The name is not scalerl's own, registered, or in `trusted`.
    """
    if not isinstance(name, str) or ":" not in name:
        raise CheckpointError(f"{what}: `{name!r}` is not a `package.module:QualName` name.")
    obj = name.obj if isinstance(name, StoredName) else None
    if obj is None:
        obj = next((o for o in trusted if qualified_name(o) == name), None)
    if obj is None:
        obj = _TRUSTED.get(name)
    if obj is None:
        kinds = own if own is not None else (base,) if base is not None else ()
        obj = _scalerl_class(name, kinds)
    if obj is None:
        module, _, qualname = name.partition(":")
        short = qualname.split(".")[0]
        raise CheckpointError(
            f"The checkpoint names `{name}` as {what}; loading a checkpoint never imports or "
            "calls code it names on its own. If you trust it, pass it in: "
            f"`from {module} import {short}` and then `from_checkpoint(path, trusted=[{short}])`, "
            f"or call `scalerl.register_trusted({short})` first (the CLI: `--trust {name}`)."
        )
    if base is not None and not (isinstance(obj, type) and issubclass(obj, base)):
        raise CheckpointError(f"`{name}` ({what}) is not a {base.__name__} subclass.")
    return obj


def _scalerl_class(name: str, kinds: tuple[type, ...]) -> Any:
    """A class defined in scalerl itself, found under exactly that name, that subclasses
    one of `kinds` (None otherwise)."""
    module_name, _, qualname = name.partition(":")
    if not kinds or (module_name != "scalerl" and not module_name.startswith("scalerl.")):
        return None
    import importlib

    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError):
        return None
    # `scalerl.x:os.system` would reach another module's function through an import.
    if not (isinstance(obj, type) and issubclass(obj, kinds)) or qualified_name(obj) != name:
        return None
    return obj


def import_trusted(name: str) -> Any:
    """Import `package.module:QualName` because the user asked for it by name (the CLI's
    `--trust`), and register it."""
    import importlib

    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as e:
        raise CheckpointError(f"--trust {name}: cannot import it ({e}).") from None
    register_trusted(obj)
    return obj


__all__ = [
    "register_trusted",
    "resolve",
    "qualified_name",
    "import_trusted",
    "StoredName",
    "carrying_objects",
    "stored_name",
]
