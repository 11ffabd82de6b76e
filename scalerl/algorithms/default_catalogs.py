"""RLlib's default model catalogs, as markers: `RLModuleSpec(catalog_class=PPOCatalog)`.

In RLlib a catalog builds an RLModule's encoder and heads from its model config; the
default catalogs build the default networks. scalerl's default modules build those
networks themselves from `DefaultModelConfig`, so passing an algorithm's default catalog
changes nothing and is accepted; any other catalog class (a custom one) is refused with a
ConfigError, since scalerl does not support custom catalogs yet.
"""

from __future__ import annotations


class DefaultCatalog:
    """Base of the default-catalog markers (`is_default_catalog`)."""

    is_default_catalog = True


class PPOCatalog(DefaultCatalog):
    """RLlib's default PPO catalog (`ray.rllib.algorithms.ppo.ppo_catalog.PPOCatalog`)."""


class DQNCatalog(DefaultCatalog):
    """RLlib's default DQN catalog (`ray.rllib.algorithms.dqn.dqn_catalog.DQNCatalog`)."""


class SACCatalog(DefaultCatalog):
    """RLlib's default SAC catalog (`ray.rllib.algorithms.sac.sac_catalog.SACCatalog`)."""
