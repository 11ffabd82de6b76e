"""Config handling shared by the multi-agent example envs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scalerl.utils.errors import unknown_keys_error


def check_config(env: str, config: Mapping | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `config`; a `ConfigError` naming unknown keys (with a guess)."""
    config = dict(config or {})
    unknown = [k for k in config if k not in defaults]
    if unknown:
        raise unknown_keys_error(f"{env}'s env_config", unknown, defaults)
    return {**defaults, **config}
