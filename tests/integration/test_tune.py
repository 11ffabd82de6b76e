"""Ray Tune runs scalerl's algorithms (issue 13): a grid search that restores its best
checkpoint, the algorithm given by class, envs registered with scalerl's and with
`ray.tune.register_env`, and resuming an experiment whose trial failed. Kept few and
tiny: every trial process imports torch."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import ray
from ray import cloudpickle, tune

import scalerl
from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPO, PPOConfig

ROOT = Path(__file__).resolve().parents[2]
# Trial processes cannot import this test module: Ray ships its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def tiny_ppo(env: str = "CartPole-v1") -> PPOConfig:
    """200 env steps and one epoch per iteration."""
    return (
        PPOConfig()
        .environment(env)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
    )


def run_config(tmp_path, name: str, stop: int | dict, **checkpoint) -> tune.RunConfig:
    """Stop after `stop` iterations, or at the conditions `stop` names."""
    return tune.RunConfig(
        name=name,
        storage_path=str(tmp_path),
        stop=stop if isinstance(stop, dict) else {"training_iteration": stop},
        checkpoint_config=tune.CheckpointConfig(**checkpoint),
        verbose=0,
    )


def assert_scalerl_result(metrics: dict, iterations: int) -> None:
    """The result is scalerl's `train()` dict (RLlib reports no non-finite drops)."""
    assert metrics["training_iteration"] == iterations
    assert metrics["num_env_steps_sampled_lifetime"] == 200 * iterations
    assert metrics["env_runners"]["num_nonfinite_dropped_lifetime"] == 0


def mark_result(*, result, **kwargs):
    """A callback given as a function: `param_space=config` carries it to the trials."""
    result["tune_callback"] = result["training_iteration"]


def test_grid_search_of_four_trials_restores_its_best_checkpoint(ray_local, tmp_path):
    config = tiny_ppo().training(lr=tune.grid_search([1e-3, 3e-4]), gamma=tune.uniform(0.9, 0.99))
    config.rl_module(model_config={"fcnet_hiddens": tune.grid_search([[16], [32]])})
    config.callbacks(on_train_result=mark_result)
    results = tune.Tuner(
        "PPO",
        param_space=config,
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=run_config(
            tmp_path, "grid", 2, checkpoint_frequency=1, checkpoint_at_end=True, num_to_keep=2
        ),
    ).fit()

    assert len(results) == 4 and not results.errors
    for result in results:
        assert_scalerl_result(result.metrics, 2)
        assert 0.9 <= result.config["gamma"] <= 0.99
        assert result.metrics["tune_callback"] == 2
    grid = {(r.config["lr"], r.config["model_config"]["fcnet_hiddens"][0]) for r in results}
    assert grid == {(1e-3, 16), (1e-3, 32), (3e-4, 16), (3e-4, 32)}

    best = results.get_best_result(metric="env_runners/episode_return_mean", mode="max")
    returns = [r.metrics["env_runners"]["episode_return_mean"] for r in results]
    assert best.metrics["env_runners"]["episode_return_mean"] == max(returns)
    algo = Algorithm.from_checkpoint(best.checkpoint.path)
    assert isinstance(algo, PPO)
    assert algo.training_iteration == 2 and algo.num_env_steps_sampled_lifetime == 400
    assert algo.config.lr == best.config["lr"] and algo.config.gamma == best.config["gamma"]
    hidden = best.config["model_config"]["fcnet_hiddens"][0]
    assert algo.get_weights()["default_policy"]["pi_encoder.layers.0.weight"].shape[0] == hidden
    # Tune's own copy of the checkpoint loads too.
    again = Algorithm.from_checkpoint(best.checkpoint.to_directory(str(tmp_path / "best")))
    assert again.training_iteration == 2
    algo.stop()
    again.stop()


def make_short_cartpole(env_config):
    """CartPole cut at `env_config["steps"]` steps."""
    return gym.make("CartPole-v1", max_episode_steps=env_config["steps"])


def test_tuner_takes_the_algorithm_class_and_a_scalerl_env_name(ray_local, tmp_path):
    """`Tuner(PPO, param_space=config.to_dict())` with an env from `scalerl.register_env`
    (shared with Tune for the trial's process) and one Ray EnvRunner in the trial's
    placement group. The unit tests check that `"PPO"` and `config.algo_class` resolve to
    the same Trainable."""
    scalerl.register_env("scalerl_short_cartpole", make_short_cartpole)
    config = tiny_ppo("scalerl_short_cartpole").environment(env_config={"steps": 10})
    config.env_runners(num_env_runners=1)  # a Ray runner inside the trial's placement group
    # Whichever comes first: the return (at most 10 here) or the step budget (2 iterations).
    stop = {"env_runners/episode_return_mean": 100, "num_env_steps_sampled_lifetime": 400}
    results = tune.Tuner(
        PPO, param_space=config.to_dict(), run_config=run_config(tmp_path, "class", stop)
    ).fit()
    assert not results.errors
    assert_scalerl_result(results[0].metrics, 2)
    assert results[0].metrics["env_runners"]["episode_len_mean"] <= 10  # that env's
    assert results[0].metrics["env_runner_group"]["num_healthy_env_runners"] == 1


class FailingCartPole(gym.Wrapper):
    """CartPole that raises at step 250 (in the second iteration) while `flag` exists."""

    def __init__(self, flag: str):
        super().__init__(gym.make("CartPole-v1"))
        self.flag, self.steps = Path(flag), 0

    def step(self, action):
        self.steps += 1
        if self.steps == 250 and self.flag.exists():
            raise RuntimeError("planned failure")
        return self.env.step(action)


def test_restore_resumes_an_experiment_whose_trial_failed(ray_local, tmp_path):
    flag = tmp_path / "fail"
    flag.touch()
    tune.register_env("tune_failing_cartpole", lambda cfg: FailingCartPole(cfg["flag"]))
    config = tiny_ppo("tune_failing_cartpole").environment(env_config={"flag": str(flag)})
    resume_run = run_config(tmp_path, "resume", 3, checkpoint_frequency=1)
    first = tune.Tuner("PPO", param_space=config, run_config=resume_run).fit()
    assert len(first.errors) == 1 and "planned failure" in str(first.errors[0])
    assert first[0].metrics["training_iteration"] == 1

    flag.unlink()
    # Even with another "PPO" in Tune's registry (RLlib registers its own), the name stays
    # scalerl's once scalerl is imported.
    tune.register_trainable("PPO", tune.Trainable)
    tuner = tune.Tuner.restore(str(tmp_path / "resume"), trainable="PPO", resume_errored=True)
    result = tuner.fit()[0]
    assert result.error is None
    assert_scalerl_result(result.metrics, 3)
    algo = Algorithm.from_checkpoint(result.checkpoint.path)
    assert algo.training_iteration == 3 and algo.num_env_steps_sampled_lifetime == 600
    algo.stop()


def test_importing_ray_tune_after_scalerl_links_them():
    """`import scalerl` leaves Ray Tune alone; importing it later registers scalerl's
    algorithms (in a fresh process: this one imported both long ago)."""
    code = (
        "import sys\n"
        "from scalerl.algorithms.ppo import PPOConfig\n"
        "assert 'ray.tune' not in sys.modules\n"
        "from ray import tune\n"
        "from ray.tune.registry import get_trainable_cls\n"
        "from ray.tune.tune import _Config\n"
        "print(get_trainable_cls('PPO').__module__, isinstance(PPOConfig(), _Config))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["scalerl.tune.trainable", "True"]
