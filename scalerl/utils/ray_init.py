"""Starting Ray on demand (shared by the EnvRunner and Learner groups)."""

from __future__ import annotations


def init_ray_if_needed() -> None:
    """Start Ray only when actors are needed, and reuse a running instance."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
