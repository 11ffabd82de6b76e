"""scalerl's algorithms as Ray Tune Trainables (needs `pip install scalerl[tune]`).

Importing this package (scalerl does it for you once both its configs and `ray.tune` are
imported, in either order) makes these run scalerl's algorithm, never RLlib's:

    tune.Tuner("PPO", param_space=config)
    tune.Tuner(PPO, param_space=config.to_dict())
    tune.Tuner(config.algo_class, param_space=config)

Search spaces (`tune.grid_search`, `tune.uniform`, `tune.choice`, ...) may sit anywhere in
the config, nested ones too; each trial gets the config with Tune's values, reports
`algo.train()`'s results (`metric="env_runners/episode_return_mean"`), asks for one CPU
for the driver plus its EnvRunners' and learners' resources, and writes scalerl
checkpoints, which `Algorithm.from_checkpoint(result.checkpoint.path)` loads.
"""

from scalerl.tune.registration import param_space_dict, register_with_tune, scalerl_trainable
from scalerl.tune.trainable import (
    AlgorithmTrainable,
    config_from_tune,
    is_search_space,
    trainable_for,
    trial_bundles,
)

register_with_tune()

__all__ = [
    "AlgorithmTrainable",
    "config_from_tune",
    "is_search_space",
    "param_space_dict",
    "register_with_tune",
    "scalerl_trainable",
    "trainable_for",
    "trial_bundles",
]
