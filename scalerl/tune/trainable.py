"""An scalerl Algorithm as a Ray Tune Trainable (composition: the Trainable holds one).

`trainable_for(PPO)` (or `trainable_for("PPO")`) is a `ray.tune.Trainable` subclass named
like the algorithm: Tune gives it the trial's resolved config dict, it builds the
algorithm from it, reports `algo.train()`'s result dict every step, and saves and
restores through scalerl's own checkpoints (`save_to_path` / `restore_from_path`), so a
trial's checkpoint is also an `Algorithm.from_checkpoint` directory.
"""

from __future__ import annotations

import copy
from typing import Any

try:
    from ray.tune import PlacementGroupFactory, Trainable
    from ray.tune.result import STDERR_FILE, STDOUT_FILE, TRIAL_INFO
except ImportError as e:  # Ray without Tune's dependencies (pandas, pyarrow, ...)
    raise ImportError(
        f"scalerl.tune needs Ray Tune, which could not be imported ({e}). Install it with "
        "`pip install 'scalerl[tune]'`."
    ) from e

from scalerl.algorithms.config_storage import is_search_space
from scalerl.algorithms.registry import ALGORITHMS
from scalerl.utils.errors import CheckpointError, ConfigError

# Keys Tune may add to a trial's config; they are Tune's, not settings.
_TUNE_KEYS = (TRIAL_INFO, STDOUT_FILE, STDERR_FILE)


def canonical_name(name: str) -> str | None:
    """The class name of the scalerl algorithm that `name` names in scalerl's registry
    (e.g. "APEX-DQN" -> "APEXDQN"), or None."""
    key = str(name).upper().replace("-", "").replace("_", "")
    return ALGORITHMS[key][1] if key in ALGORITHMS else None


def config_from_tune(algo_class: type, settings: dict[str, Any]) -> Any:
    """The algorithm's config from a trial's config dict (`config.to_dict()` with Tune's
    values in place of the search spaces; settings not in the dict keep their defaults).

    Raises:
        ConfigError: A setting still holds a search space, or a name is not a setting.
    """
    if not isinstance(settings, dict):
        raise ConfigError(
            f"Ray Tune passed {type(settings).__name__} as the trial's config; give "
            "`param_space=config` (or `config.to_dict()`) to `tune.Tuner`."
        )
    settings = {k: v for k, v in settings.items() if k not in _TUNE_KEYS}
    for key, value in settings.items():
        where = _search_space_in(value)
        if where is not None:
            raise ConfigError(
                f"Setting `{key}` still holds a Tune search space{where}: pass the config "
                "as `param_space` to `tune.Tuner`, which picks a value per trial."
            )
    try:
        return algo_class.config_class().update_from_dict(settings)
    except (CheckpointError, ConfigError) as e:
        if not _plain_names(settings):
            raise
        raise ConfigError(
            f"{e}\nIn a Ray Tune trial: pass the config object itself as `param_space` "
            "(not `config.to_dict()`): its classes and functions then travel to the trials. "
            "An env can also be registered with `ray.tune.register_env(name, creator)`."
        ) from None


def _plain_names(value: Any) -> bool:
    """Whether `value` holds a class or function name as a plain string (as `to_dict()`
    writes it), which only resolves against what the trial's process registered."""
    if isinstance(value, dict):
        names = [value.get("__callable__"), value.get("module_class")]
        if any(type(n) is str for n in names):
            return True
        return any(_plain_names(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_plain_names(v) for v in value)
    return False


def _search_space_in(value: Any, path: str = "") -> str | None:
    """Where in `value` a search space sits (" at `key/...`", or "" at the top), or None."""
    if is_search_space(value):
        return f" at `{path}`" if path else ""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        found = _search_space_in(v, f"{path}/{k}" if path else str(k))
        if found is not None:
            return found
    return None


def trial_bundles(config: Any) -> list[dict[str, float]]:
    """The resources one trial needs, as placement-group bundles: the driver
    (`num_cpus_for_main_process` CPUs and `custom_resources_for_main_process`, and
    the learner's GPUs with `num_learners=0`), one per EnvRunner (training and
    evaluation: `num_cpus_per_env_runner`) and one per remote learner
    (`num_cpus_per_learner`, `num_gpus_per_learner`). RLlib's layout."""
    # RLlib's `resources(num_cpus_for_main_process, custom_resources_for_main_process)`.
    driver: dict[str, float] = {
        "CPU": config.num_cpus_for_main_process,
        **config.custom_resources_for_main_process,
    }
    if config.num_learners == 0 and config.num_gpus_per_learner:
        driver["GPU"] = config.num_gpus_per_learner
    runners = config.num_env_runners + config.evaluation_num_env_runners
    bundles = [driver]
    if config.num_cpus_per_env_runner:
        bundles += [{"CPU": config.num_cpus_per_env_runner} for _ in range(runners)]
    learner = {"CPU": config.num_cpus_per_learner, "GPU": config.num_gpus_per_learner}
    learner = {k: v for k, v in learner.items() if v}
    if learner:
        bundles += [dict(learner) for _ in range(config.num_learners)]
    return bundles


class AlgorithmTrainable(Trainable):
    """Base of the per-algorithm Trainables (`trainable_for`): builds the algorithm from
    the trial's config, trains it one iteration per step, checkpoints it with scalerl's
    checkpoints. `self.algo` is the algorithm."""

    # The algorithm: a name in scalerl's registry (resolved when a trial starts, so that
    # registering with Tune imports no algorithm), or a class (a user's own algorithm).
    algo_name: str | None = None
    algo_cls: type | None = None

    @classmethod
    def algorithm_class(cls) -> type:
        """The scalerl Algorithm class this Trainable runs."""
        if cls.algo_cls is not None:
            return cls.algo_cls
        from scalerl.algorithms.registry import get_algorithm_class

        return get_algorithm_class(cls.algo_name)

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> PlacementGroupFactory:
        """A trial's resources: see `trial_bundles` (packed onto as few nodes as fit)."""
        algo_config = config_from_tune(cls.algorithm_class(), config)
        strategy = algo_config.placement_strategy  # RLlib's `resources(placement_strategy)`
        return PlacementGroupFactory(trial_bundles(algo_config), strategy=strategy)

    def setup(self, config: dict[str, Any]) -> None:
        """Build the algorithm from the trial's resolved config dict."""
        algo_config = config_from_tune(self.algorithm_class(), config)
        if "logger_config" not in config:
            # Tune writes the trial's progress.csv / result.json itself: no second run dir.
            algo_config.logger_config = {"type": None}
        self.algo = algo_config.build_algo()

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Build a new algorithm for the next trial in this process (Tune's
        `reuse_actors`), which saves starting a process and importing torch."""
        self.cleanup()
        self.setup(copy.deepcopy(new_config))
        return True

    def step(self) -> dict[str, Any]:
        """One training iteration: `algo.train()`'s result dict (Tune reads nested keys as
        `env_runners/episode_return_mean`)."""
        return self.algo.train()

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Write an scalerl checkpoint into Tune's directory (other files there are kept)."""
        self.algo.save_to_path(checkpoint_dir)

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Restore weights, optimizer state and counters from an scalerl checkpoint."""
        if isinstance(checkpoint, dict):
            raise CheckpointError(
                "This Tune checkpoint is a pickled dict, not an scalerl checkpoint directory."
            )
        self.algo.restore_from_path(checkpoint)

    def cleanup(self) -> None:
        """Stop the algorithm (its envs and Ray actors)."""
        algo = getattr(self, "algo", None)
        if algo is not None:
            algo.stop()


_TRAINABLES: dict[Any, type] = {}


def trainable_for(algo: str | type) -> type[AlgorithmTrainable]:
    """The Tune Trainable class that runs `algo`: a name in scalerl's registry ("PPO",
    "APEX-DQN", ...) or an scalerl Algorithm class (your own subclass too). The class is
    named like the algorithm and made once per algorithm.

    Raises:
        ConfigError: `algo` is neither (the message lists the names).
    """
    if isinstance(algo, str):
        name = canonical_name(algo)
        if name is None:
            from scalerl.algorithms.registry import get_algorithm_class

            get_algorithm_class(algo)  # raises the ConfigError that names the nearest
        key: Any = name
        attrs: dict[str, Any] = {"algo_name": name}
    else:
        from scalerl.algorithms.algorithm import Algorithm
        from scalerl.algorithms.registry import get_algorithm_class

        if not (isinstance(algo, type) and issubclass(algo, Algorithm)):
            raise ConfigError(f"trainable_for: {algo!r} is not an scalerl Algorithm class.")
        name = canonical_name(algo.__name__)
        own = name is not None and get_algorithm_class(name) is algo
        key = name if own else algo
        name = algo.__name__
        attrs = {"algo_name": name} if own else {"algo_cls": algo}
    if key not in _TRAINABLES:
        cls = type(name, (AlgorithmTrainable,), {**attrs, "__module__": __name__})
        cls.__qualname__ = name
        cls.__doc__ = f"The scalerl algorithm `{name}` as a Ray Tune Trainable."
        _TRAINABLES[key] = cls
    return _TRAINABLES[key]


def __getattr__(name: str) -> Any:
    """`scalerl.tune.trainable.PPO` (etc.): the registered algorithms' Trainables, so
    that Ray pickles them by name and a trial's process builds the same class."""
    if canonical_name(name) == name:
        return trainable_for(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
