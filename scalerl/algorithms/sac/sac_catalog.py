"""RLlib's `ray.rllib.algorithms.sac.sac_catalog` path (a marker: see
`scalerl/algorithms/default_catalogs.py`)."""

from scalerl.algorithms.default_catalogs import SACCatalog

__all__ = ["SACCatalog"]
