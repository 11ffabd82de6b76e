"""RLlib's `ray.rllib.algorithms.dqn.dqn_catalog` path (a marker: see
`scalerl/algorithms/default_catalogs.py`)."""

from scalerl.algorithms.default_catalogs import DQNCatalog

__all__ = ["DQNCatalog"]
