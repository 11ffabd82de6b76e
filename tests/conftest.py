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


@pytest.fixture
def count_updates(monkeypatch):
    """`count_updates(learner)` counts the learner's `update` calls from then on; returns a
    one-item list holding the count."""

    def start(learner) -> list[int]:
        calls = [0]
        real_update = learner.update

        def counted(*args, **kwargs):
            calls[0] += 1
            return real_update(*args, **kwargs)

        monkeypatch.setattr(learner, "update", counted)
        return calls

    return start


@pytest.fixture(autouse=True, scope="session")
def results_dir(tmp_path_factory):
    """Run directories and default checkpoints go to a temporary directory, never to the
    real `~/scalerl_results` (`SCALERL_RESULTS_DIR`; Ray workers inherit it)."""
    path = tmp_path_factory.mktemp("scalerl_results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALERL_RESULTS_DIR", str(path))
        yield path
