"""Callbacks (RLlib's `RLlibCallback` and per-event functions) and custom metrics."""

from __future__ import annotations

import threading

import pytest
import ray

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.callbacks import DefaultCallbacks, MultiAgentEpisode, RLlibCallback
from scalerl.env.env_runner_group import _missing_module
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

# In a module Ray actors can import (pytest imports this one by file name): the class
# travels to them by reference.
from tests.integration.callback_classes import EVENTS, EpisodeRecorder
from tests.integration.multi_agent_test_envs import PayTheOther


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
    # Driver events only: the runner builds no episode objects.
    assert algo.env_runner_group.local_runner.events is None
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


def test_bad_callback_settings_are_refused():
    with pytest.raises(ConfigError, match="RLlibCallback subclass"):
        config(callbacks_class=object).build_algo()
    with pytest.raises(ConfigError, match="must be a function"):
        config(on_train_result=3).build_algo()
    with pytest.raises(ConfigError, match="must be a function"):
        config(on_episode_end=[len, "x"]).build_algo()


# -- EnvRunner events ---------------------------------------------------------------------
def test_env_runner_events_run_with_rllibs_arguments_and_log_metrics():
    algo = (
        config(callbacks_class=EpisodeRecorder)
        .env_runners(num_envs_per_env_runner=2)
        .evaluation(evaluation_interval=1, evaluation_duration=3)
        .build_algo()
    )
    runner = algo.env_runner_group.local_runner
    assert EVENTS[0][0] == "on_environment_created" and EVENTS[0][1]["runner"] is runner
    assert EVENTS[0][1]["env"].envs == runner.envs
    result = algo.train()
    training = [(e, kw) for e, kw in EVENTS[1:] if kw.get("env_runner", runner) is runner]
    # Per env: created, start, steps, end (the last step before each end), repeated.
    for i in (0, 1):
        names = [e for e, kw in training if kw.get("env_index") == i]
        assert names[:3] == ["on_episode_created", "on_episode_start", "on_episode_step"]
        ends = [k for k, e in enumerate(names) if e == "on_episode_end"]
        assert ends and all(names[k - 1] == "on_episode_step" for k in ends)
        assert all(names[k + 1] == "on_episode_created" for k in ends if k + 1 < len(names))
    _, step = next((e, kw) for e, kw in training if e == "on_episode_step")
    assert step["metrics_logger"] is runner.metrics and step["rl_module"] is runner.module
    assert step["env"].envs[step["env_index"]] is runner.envs[step["env_index"]]
    # RLlib's place for EnvRunner metrics; reduced like the built-in ones.
    runners = result[ENV_RUNNER_RESULTS]
    assert runners["episodes_cb"] == runners["num_episodes"] > 0
    assert runners["episode_len_cb"] == pytest.approx(runners["episode_len_mean"])
    assert runners["return_cb"] == pytest.approx(runners[EPISODE_RETURN_MEAN])
    # A pole falls past 0.2095 rad (12 degrees) at the end, by less than a step's turn.
    assert 0.2 < runners["max_pole_angle"] < 0.3 and runners["samples_cb"] == 1
    # Evaluation runners call the events too; their metrics go under `evaluation`.
    evaluation = result[EVALUATION_RESULTS][ENV_RUNNER_RESULTS]
    assert evaluation["episodes_cb"] == evaluation["num_episodes"] == 3
    assert evaluation["episode_len_cb"] == pytest.approx(evaluation["episode_len_mean"])
    second = algo.train()[ENV_RUNNER_RESULTS]
    assert second["episodes_cb"] == second["num_episodes_lifetime"]  # a lifetime sum
    assert second["samples_cb"] == 1  # cleared after each sample()
    algo.stop()


MA_EVENTS: list = []


def ma_on_episode_end(*, episode, env_runner, metrics_logger, env, env_index, rl_module, **kw):
    MA_EVENTS.append(episode)
    metrics_logger.log_value("return_cb", episode.get_return())


def test_multi_agent_episodes_in_the_events():
    MA_EVENTS.clear()
    algo = (
        PPOConfig()
        .environment(PayTheOther)
        .multi_agent(policies={"p1", "p2"}, policy_mapping_fn=lambda aid, *a, **k: aid)
        .training(train_batch_size=60, minibatch_size=30, num_epochs=1)
        .callbacks(on_episode_end=ma_on_episode_end)
        .debugging(seed=0)
        .build_algo()
    )
    result = algo.train()
    episode = MA_EVENTS[0]
    assert isinstance(episode, MultiAgentEpisode) and episode.is_terminated
    assert episode.agent_ids == {"p1", "p2"} and len(episode) == 6
    assert episode.module_for("p2") == "p2"
    # Turn-based: p1 observes 0, 2, 4; p2 observes 1, 3, 5; each gets 1 per move of the
    # other, added to its own open step (p1's first step also holds p2's first payment).
    assert episode.get_observations(0) == {"p1": 0, "p2": 1}
    assert episode.get_observations(-1) == {"p1": 4, "p2": 5}  # the last ones they saw
    actions = episode.get_actions()
    assert len(actions["p1"]) == len(actions["p2"]) == 3
    moves = sum(actions["p1"]) + sum(actions["p2"])
    assert episode.get_return() == pytest.approx(6 + 0.5 * moves)
    assert sum(episode.get_rewards()["p1"]) == pytest.approx(3 + 0.5 * sum(actions["p1"]))
    runners = result[ENV_RUNNER_RESULTS]
    assert runners["return_cb"] == pytest.approx(runners[EPISODE_RETURN_MEAN])
    algo.stop()


def test_a_callback_ray_cannot_send_is_a_config_error():
    lock = threading.Lock()
    with pytest.raises(ConfigError, match="on_episode_end.*cannot be sent to the Ray"):
        config(on_episode_end=lambda **kw: lock).env_runners(num_env_runners=1).build_algo()
    # An actor that dies importing a user's module (e.g. a callbacks class defined in a
    # module only the driver can import) is named in a ConfigError.
    died = RuntimeError("ModuleNotFoundError: No module named 'my_callbacks'")
    assert _missing_module(died) == "module 'my_callbacks'"
    assert _missing_module(RuntimeError("killed")) is None


RECREATED: list = []


def on_recreated(*, algorithm, env_runner_group, env_runner_indices, is_evaluation, **kw):
    RECREATED.append((env_runner_group is algorithm.env_runner_group, env_runner_indices))


def test_env_runner_events_in_ray_runners_and_recreated_runners(assert_actor_dead):
    """A class from this module (by reference) and a lambda (by value) travel to the actor;
    what they log there comes back merged into the result."""
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        algo = (
            config(
                callbacks_class=[Recorder, EpisodeRecorder],  # Recorder: driver only
                on_episode_start=lambda *, metrics_logger, **kw: metrics_logger.log_value(
                    "starts_cb", 1, reduce="sum"
                ),
                on_env_runners_recreated=on_recreated,
            )
            .env_runners(num_env_runners=1)
            .fault_tolerance(delay_between_env_runner_restarts_s=0.0)
            .build_algo()
        )
        result = algo.train()[ENV_RUNNER_RESULTS]
        assert result["episodes_cb"] == result["num_episodes"] > 0
        assert result["episode_len_cb"] == pytest.approx(result["episode_len_mean"])
        assert result["starts_cb"] >= result["num_episodes"]
        assert [e for e, _ in EVENTS] == ["on_algorithm_init", "on_train_result"]  # driver
        victim = algo.env_runner_group.remote_runners[0]
        ray.kill(victim)
        assert_actor_dead(victim)
        again = algo.train()[ENV_RUNNER_RESULTS]
        assert RECREATED == [(True, [1])]
        # The new actor's values add to the driver's (a lifetime sum over all runners).
        assert again["episodes_cb"] == again["num_episodes_lifetime"]
        algo.stop()
    finally:
        ray.shutdown()


ENDED: list = []


def test_episodes_cut_short_get_no_episode_end(tmp_path):
    """An env recreated mid-episode (`restart_failed_sub_environments`) cuts its episode:
    no `on_episode_end` for it, as it gets no place in the metrics."""
    from scalerl.examples.envs import CartPoleCrashing

    ENDED.clear()
    algo = (
        config(on_episode_end=lambda *, episode, **kw: ENDED.append(episode))
        .environment(
            CartPoleCrashing, env_config={"crash_at_step": 7, "once_file": str(tmp_path / "once")}
        )
        .fault_tolerance(restart_failed_sub_environments=True)
        .build_algo()
    )
    _, metrics = algo.env_runner_group.local_runner.sample(60)
    assert metrics["num_sub_env_restarts"] == 1
    assert [e.get_return() for e in ENDED] == metrics["episode_returns"]
    assert [len(e) for e in ENDED] == metrics["episode_lens"] and ENDED
    assert all(e.is_terminated or e.is_truncated for e in ENDED)
    algo.stop()
