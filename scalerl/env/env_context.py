"""RLlib's `ray.rllib.env.env_context` path of `EnvContext` (the `env_config` dict an env
creator gets, with `worker_index`, `vector_index` and `num_workers`)."""

from scalerl.env.registry import EnvContext

__all__ = ["EnvContext"]
