"""Shared test helpers."""

import time

import pytest


@pytest.fixture
def assert_actor_dead():
    """Check that a killed Ray actor is gone. `ray.kill` is asynchronous: a call made right
    after it may still be served, so poll (bounded) until calls fail."""
    import ray

    def check(actor, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(actor.__ray_ready__.remote(), timeout=5)
            except ray.exceptions.RayActorError:
                return
            except ray.exceptions.GetTimeoutError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"actor {actor} still answers {timeout_s} s after it was killed")

    return check
