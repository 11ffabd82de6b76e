"""Callbacks (RLlib's `RLlibCallback` and per-event functions) and custom metrics."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.callbacks import DefaultCallbacks, RLlibCallback
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

EVENTS: list[tuple[str, dict]] = []


class Recorder(RLlibCallback):
    """Records every event with the keyword arguments it got."""

    def on_algorithm_init(self, *, algorithm, metrics_logger=None, **kwargs):
        EVENTS.append(("on_algorithm_init", {"algorithm": algorithm, "logger": metrics_logger}))
        metrics_logger.log_value("custom/inits", 1, reduce="sum")

    def on_train_result(self, *, algorithm, metrics_logger=None, result, **kwargs):
        EVENTS.append(("on_train_result", {"iteration": result["training_iteration"]}))
        result["from_callback"] = algorithm.training_iteration
        returns = result[ENV_RUNNER_RESULTS][EPISODE_RETURN_MEAN]
        metrics_logger.log_value("custom/best_return", returns, reduce="max")

    def on_evaluate_start(self, *, algorithm, metrics_logger=None, **kwargs):
        EVENTS.append(("on_evaluate_start", {}))

    def on_evaluate_end(self, *, algorithm, metrics_logger=None, evaluation_metrics, **kwargs):
        EVENTS.append(("on_evaluate_end", {"episodes": evaluation_metrics["env_runners"]}))

    def on_checkpoint_loaded(self, *, algorithm, **kwargs):
        EVENTS.append(("on_checkpoint_loaded", {"iteration": algorithm.training_iteration}))


class Second(DefaultCallbacks):
    def on_train_result(self, *, result, **kwargs):
        result["second"] = True


def on_train_result_fn(*, algorithm, result, metrics_logger, **kwargs):
    result["fn_saw"] = result.get("from_callback")  # classes run before functions


def config(**callbacks):
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=256, minibatch_size=64, num_epochs=1)
        .evaluation(evaluation_duration=2)
        .callbacks(**callbacks)
        .debugging(seed=0)
    )


@pytest.fixture(autouse=True)
def fresh_events():
    EVENTS.clear()


def test_every_driver_event_runs_with_rllibs_arguments(tmp_path):
    algo = config(callbacks_class=[Recorder, Second], on_train_result=on_train_result_fn)
    algo = algo.build_algo()
    assert EVENTS == [("on_algorithm_init", {"algorithm": algo, "logger": algo.metrics})]
    r1 = algo.train()
    r2 = algo.train()
    assert [e for e, _ in EVENTS[1:]] == ["on_train_result", "on_train_result"]
    assert r2["from_callback"] == 2 and r2["second"] is True and r2["fn_saw"] == 2
    # Custom metrics: logged at init and in on_train_result, reduced into the results.
    assert r1["custom"]["inits"] == 1
    assert r2["custom"]["best_return"] == r1[ENV_RUNNER_RESULTS][EPISODE_RETURN_MEAN]
    assert r2[NUM_ENV_STEPS_SAMPLED_LIFETIME] == 512
    evaluation = algo.evaluate()
    assert [e for e, _ in EVENTS[3:]] == ["on_evaluate_start", "on_evaluate_end"]
    assert EVENTS[4][1]["episodes"]["num_episodes"] == 2
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    algo.stop()
    EVENTS.clear()
    restored = Algorithm.from_checkpoint(path)  # the classes are stored by name
    assert [e for e, _ in EVENTS] == ["on_algorithm_init", "on_checkpoint_loaded"]
    assert EVENTS[-1][1]["iteration"] == 2
    assert restored.config.callbacks_class == [Recorder, Second]
    assert restored.config.callbacks_on_train_result is on_train_result_fn
    assert EVALUATION_RESULTS == "evaluation" and evaluation["env_runners"]["num_episodes"]
    restored.stop()


def test_a_lambda_callback_must_be_passed_again_to_restore(tmp_path):
    algo = config(on_train_result=lambda **kw: None).build_algo()
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    algo.stop()
    with pytest.raises(ConfigError, match="lambda.*config_overrides"):
        Algorithm.from_checkpoint(path)
    restored = Algorithm.from_checkpoint(path, {"on_train_result": None})
    assert restored.config.callbacks_on_train_result is None
    restored.stop()


def test_events_not_called_yet_are_refused_not_ignored():
    class EpisodeCounter(RLlibCallback):
        def on_episode_end(self, *, episode, **kwargs):
            pass

    with pytest.raises(ConfigError, match="on_episode_end.*would never call"):
        config(callbacks_class=EpisodeCounter).build_algo()
    with pytest.raises(ConfigError, match="on_sample_end.*would never run"):
        config(on_sample_end=lambda **kw: None).build_algo()
    with pytest.raises(ConfigError, match="RLlibCallback subclass"):
        config(callbacks_class=object).build_algo()
    with pytest.raises(ConfigError, match="must be a function"):
        config(on_train_result=3).build_algo()


def test_callbacks_stay_in_the_driver_with_ray_runners():
    """Ray EnvRunners get a config without callbacks (a class from a test module need not
    be importable there); the driver calls them as in local mode."""
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        algo = config(callbacks_class=Recorder).env_runners(num_env_runners=1).build_algo()
        result = algo.train()
        assert [e for e, _ in EVENTS] == ["on_algorithm_init", "on_train_result"]
        assert result["from_callback"] == 1 and np.isfinite(result["custom"]["inits"])
        algo.stop()
    finally:
        ray.shutdown()
