"""`NotProvided`: the default of every builder argument (RLlib's sentinel)."""

from __future__ import annotations

from typing import Any


class _NotProvidedType:
    """The type of `NotProvided`: one instance, which is never a setting's value."""

    _instance: _NotProvidedType | None = None

    def __new__(cls) -> _NotProvidedType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NotProvided"

    def __copy__(self) -> _NotProvidedType:
        return self

    def __deepcopy__(self, memo: dict) -> _NotProvidedType:
        return self

    def __reduce__(self) -> str:
        return "NotProvided"


# The default of every builder argument (RLlib's name): "not given, keep the setting as it
# is". Typed `Any` so that `lr: float = NotProvided` type-checks.
NotProvided: Any = _NotProvidedType()
