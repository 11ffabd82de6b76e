"""RLlib's `ray.rllib.utils.test_utils` path of the example-script helpers (RLlib now keeps
them in `ray.rllib.examples.utils`; both paths work here)."""

from scalerl.examples.utils import (
    add_rllib_example_script_args,
    run_rllib_example_script_experiment,
)

__all__ = ["add_rllib_example_script_args", "run_rllib_example_script_experiment"]
