"""Presets: tuned settings that learn, shipped as YAML in RLlib's tuned-example form.

Each file `scalerl/presets/NAME.yaml` holds one entry
`{NAME: {env: ..., run: ALGO, stop: {...}, config: {...}}}`, the form
`scalerl train --config FILE` reads; its `stop:` is the return threshold and env-step
budget that the preset's learning test (`tests/learning/test_presets.py`) asserts.

Use one from the command line (`scalerl train --preset cartpole-ppo`) or from Python:

    from scalerl.presets import load_preset
    algo = load_preset("pendulum-sac").build_config().build_algo()

A preset names envs by Gymnasium id or, for scalerl's example envs, by class name
(e.g. `StatelessCartPole`); nothing else named in a file is imported or called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from scalerl.utils.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from scalerl.algorithms.algorithm_config import AlgorithmConfig

PRESETS_DIR = Path(__file__).parent


class Preset(NamedTuple):
    """A loaded preset: the algorithm's name, its config settings and its stop criteria.

    Attributes:
        algo: The algorithm's registered name (the file's `run:`), e.g. "PPO".
        settings: Config settings for `AlgorithmConfig.update_from_dict`, `env` included.
        stop: Stop criteria keyed like the CLI's options: `stop_reward` (smoothed training
            return), `stop_timesteps` (env steps), `stop_iters`.
    """

    algo: str
    settings: dict[str, Any]
    stop: dict[str, Any]

    def build_config(self) -> AlgorithmConfig:
        """A fresh `AlgorithmConfig` of `algo` with the preset's settings (change it further
        with the builder methods before `build_algo()`)."""
        from scalerl.algorithms.registry import get_algorithm_class

        cls = get_algorithm_class(self.algo)
        return cls.get_default_config().update_from_dict(self.settings)


def list_presets() -> list[str]:
    """The names of the shipped presets, sorted (each a `NAME.yaml` in this package)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_preset(name: str) -> Preset:
    """Read the preset `name`.

    Args:
        name: One of `list_presets()`, e.g. "cartpole-ppo".

    Returns:
        The preset's algorithm name, settings (an example env's name resolved to its class)
        and stop criteria.

    Raises:
        ConfigError: No preset has that name, or its file is not a tuned-example entry.
    """
    from scalerl.cli import load_config_file

    names = list_presets()
    if name not in names:
        raise ConfigError(
            f"Unknown preset `{name}`.{did_you_mean(name, names)} Presets: {', '.join(names)}."
        )
    path = PRESETS_DIR / f"{name}.yaml"
    settings, stop, algo = load_config_file(str(path))
    if algo is None or "env" not in settings:
        raise ConfigError(f"Preset file `{path}` must be one entry with `env:` and `run:`.")
    settings["env"] = _example_env(settings["env"])
    return Preset(algo, settings, stop)


def _example_env(env: Any) -> Any:
    """scalerl's example env class of that name (e.g. `StatelessCartPole`), else `env` as
    written (a Gymnasium id or registered name)."""
    from scalerl.env.registry import is_registered_env

    if not isinstance(env, str) or is_registered_env(env):
        return env
    import scalerl.examples.envs as envs

    return getattr(envs, env) if env in envs.__all__ else env
