"""Asynchronous sampling on Ray EnvRunners: calls in flight per runner, results as they
finish with the weights version they sampled with, and a killed runner replaced."""

from __future__ import annotations

import time

import pytest
import ray

from scalerl.algorithms.ppo import PPOConfig
from scalerl.env.async_requests import AsyncRequests


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture
def algo(ray_session):
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5, rollout_fragment_length=50)
        .training(train_batch_size=100, minibatch_size=50, num_epochs=1)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .fault_tolerance(delay_between_env_runner_restarts_s=0.0)
        .build_algo()
    )
    yield algo
    algo.stop()


def collect(requests: AsyncRequests, n: int, deadline_s: float = 60.0) -> list:
    """At least `n` results, from every runner (a loaded machine may favour one)."""
    results, deadline = [], time.monotonic() + deadline_s
    while time.monotonic() < deadline and (
        len(results) < n or {r.runner_index for r in results} != {1, 2}
    ):
        requests.request("sample")
        results += requests.fetch_ready(timeout_s=5.0)
    return results


def test_calls_in_flight_and_weights_versions(algo):
    group = algo.env_runner_group
    requests = AsyncRequests(group, max_in_flight=2)
    assert requests.request("sample") == 4  # 2 runners x 2 in flight
    assert requests.request("sample") == 0  # topped up already
    assert requests.num_in_flight(1) == requests.num_in_flight(2) == 2
    first = collect(requests, 4)
    assert {r.runner_index for r in first} == {1, 2}
    before = group.weights_version
    assert all(r.weights_version == before for r in first)
    for _ in range(requests.num_in_flight()):  # drain calls sent with the old weights
        requests.fetch_ready(timeout_s=30.0)
    group.sync_weights(algo.runner_weights())
    later = collect(requests, 4)
    assert all(r.weights_version == before + 1 for r in later)
    batch, metrics = later[0].value
    assert batch["rewards"].shape == (50, 1) and metrics["num_env_steps"] == 50


def test_a_killed_runner_is_replaced_and_sampling_goes_on(algo):
    group = algo.env_runner_group
    requests = AsyncRequests(group, max_in_flight=1)
    requests.request("sample")
    victim = group.healthy_slots()[0].actor
    ray.kill(victim)
    results = collect(requests, 6)
    assert len(results) >= 6
    assert group.metrics() == {"num_healthy_env_runners": 2, "num_remote_env_runner_restarts": 1}
    assert all(slot.actor is not victim for slot in group.healthy_slots())
