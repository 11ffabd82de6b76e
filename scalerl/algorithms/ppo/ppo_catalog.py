"""RLlib's `ray.rllib.algorithms.ppo.ppo_catalog` path (a marker: see
`scalerl/algorithms/default_catalogs.py`)."""

from scalerl.algorithms.default_catalogs import PPOCatalog

__all__ = ["PPOCatalog"]
