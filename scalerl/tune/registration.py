"""Make scalerl's algorithms what Ray Tune finds: by name, by class and by config.

Tune resolves a trainable given by name through its registry
(`ray.tune.registry.get_trainable_cls`); a name it does not know makes it register all of
RLlib's algorithms, which replaces any "PPO" registered before. It accepts only
`Trainable` subclasses as classes, and turns a `param_space` into a dict by calling
`to_dict()` only on its own `_Config` kind. So `register_with_tune()`:

- registers scalerl's names ("PPO", "APEX-DQN", ...) with `tune.register_trainable`;
- wraps `TunerInternal._convert_trainable` (where every `Tuner` and `Tuner.restore`
  receives its trainable) so that an scalerl Algorithm class, or one of scalerl's names,
  becomes scalerl's Trainable there, whatever the registry holds by then;
- wraps `TunerInternal.param_space`'s setter so that an `AlgorithmConfig` becomes
  `param_space_dict(config)`: `to_dict()` whose class and function names hold their
  objects (`StoredName`), so that an env class, a callbacks class or a custom RLModule
  given to the config reaches the trials' processes;
- registers `AlgorithmConfig` as a virtual subclass of Tune's `_Config` (`tune.run`);
- registers the envs of `scalerl.register_env` with Tune too (trials look them up there).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from scalerl.algorithms.registry import ALGORITHM_NAMES, ALGORITHMS
from scalerl.env.registry import share_envs_with_tune
from scalerl.tune.trainable import canonical_name, trainable_for
from scalerl.utils.errors import ConfigError

# Every name scalerl's registry answers to, as Tune strings are spelt (case-sensitive).
TUNE_NAMES = tuple(dict.fromkeys(list(ALGORITHMS) + list(ALGORITHM_NAMES)))


def scalerl_trainable(trainable: Any) -> Any:
    """`trainable` as Tune should run it: scalerl's Trainable for one of scalerl's names
    or Algorithm classes; anything else unchanged (RLlib's own classes stay RLlib's)."""
    if isinstance(trainable, str) and trainable in TUNE_NAMES:
        return trainable_for(trainable)
    if isinstance(trainable, type):
        from scalerl.algorithms.algorithm import Algorithm

        if issubclass(trainable, Algorithm):
            return trainable_for(trainable)
    return trainable


def param_space_dict(config: Any) -> dict[str, Any]:
    """`config.to_dict()` for Tune: search spaces kept, names holding their objects."""
    from scalerl.utils.trust import carrying_objects

    with carrying_objects():
        return config.to_dict()


def register_with_tune() -> None:
    """Register scalerl's algorithms with Ray Tune (see the module docstring); safe to
    call again."""
    from ray.tune.tune import _Config

    from scalerl.algorithms.algorithm_config import AlgorithmConfig

    _Config.register(AlgorithmConfig)
    register_names_and_envs()
    _wrap_tuner()


def register_names_and_envs() -> None:
    """Put scalerl's names and `register_env` envs in Tune's registry. It lives in the
    Ray session (its key-value store), so entries vanish with `ray.shutdown()`: every
    `Tuner` given an scalerl trainable calls this again."""
    share_envs_with_tune()
    for name in TUNE_NAMES:
        tune.register_trainable(name, trainable_for(canonical_name(name)), warn=False)


def check_not_rllib(trainable: Any, config: Any) -> None:
    """Refuse to give an scalerl config to one of RLlib's algorithms (by class, or by a
    name Tune's registry maps to one): RLlib would read the dict in its own way.

    Raises:
        ConfigError: The trainable is RLlib's; the message names scalerl's algorithms.
    """
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    cls = trainable
    if isinstance(trainable, str) and _global_registry.contains(TRAINABLE_CLASS, trainable):
        cls = _global_registry.get(TRAINABLE_CLASS, trainable)
    if isinstance(cls, type) and cls.__module__.startswith("ray.rllib"):
        raise ConfigError(
            f"`param_space` is an scalerl {type(config).__name__}, but the trainable "
            f"{trainable!r} is RLlib's {cls.__name__}. Run scalerl's: pass one of "
            f"{', '.join(ALGORITHM_NAMES)} by name, or its class (`config.algo_class`)."
        )


def _wrap_tuner() -> None:
    from ray.tune.impl.tuner_internal import TunerInternal

    from scalerl.algorithms.algorithm_config import AlgorithmConfig

    original = TunerInternal._convert_trainable
    if getattr(original, "scalerl_wrapped", False):
        return

    def _convert_trainable(self: Any, trainable: Any) -> Any:
        converted = scalerl_trainable(trainable)
        if converted is not trainable:
            register_names_and_envs()  # a new Ray session starts with an empty registry
        return original(self, converted)

    space = TunerInternal.param_space

    def set_param_space(self: Any, param_space: Any) -> None:
        if isinstance(param_space, AlgorithmConfig):
            check_not_rllib(getattr(self, "_converted_trainable", None), param_space)
            param_space = param_space_dict(param_space)
        space.fset(self, param_space)

    _convert_trainable.scalerl_wrapped = True  # type: ignore[attr-defined]
    TunerInternal._convert_trainable = _convert_trainable
    TunerInternal.param_space = property(space.fget, set_param_space, doc=space.__doc__)
