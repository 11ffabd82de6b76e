"""RLlib's AlgorithmConfig documentation, evaluation examples and metric constants, with
`scalerl` imports.

Each test makes the API calls of the RLlib file named in its docstring (paths in the
ray-project/ray repository), written anew for scalerl.
"""

from __future__ import annotations

import time

import pytest

from scalerl.algorithms.algorithm_config import AlgorithmConfig
from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.sac import SACConfig
from scalerl.core.columns import Columns
from scalerl.core.rl_module.default_model_config import DefaultModelConfig
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    TRAINING_ITERATION,
)


def test_algorithm_config_builder_chain_and_to_dict():
    """Mirrors doc/source/rllib/algorithm-config.rst ("Generic config settings"): a chain
    of `environment`, `env_runners`, `training`, `learners`, `evaluation`, `debugging`,
    `reporting` calls, `to_dict()` and `copy()`, then `build_algo()`."""
    config = (
        PPOConfig()
        .environment("CartPole-v1", env_config={})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length="auto")
        .training(lr=0.0005, gamma=0.98, train_batch_size_per_learner=256, num_epochs=2)
        .learners(num_learners=0, num_gpus_per_learner=0)
        .evaluation(evaluation_interval=None)
        .debugging(seed=7, log_level="WARN")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )
    as_dict = config.to_dict()
    assert as_dict["lr"] == 0.0005 and as_dict["train_batch_size_per_learner"] == 256
    clone = config.copy()
    clone.training(lr=0.1)
    assert config.lr == 0.0005
    algo = config.build_algo()
    assert algo.train()[ENV_RUNNER_RESULTS]["num_env_steps_sampled"] == 256
    algo.stop()


def test_resources_checkpointing_experimental_and_offline_builder_methods():
    """Mirrors doc/source/rllib/package_ref/algorithm-config.rst (the builder methods
    `resources`, `checkpointing`, `experimental`, `offline_data`, `fault_tolerance`):
    RLlib's arguments are accepted; an unsupported feature is refused by name."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .resources(num_cpus_for_main_process=1, num_gpus=0, placement_strategy="PACK")
        .checkpointing(export_native_model_files=False, checkpoint_trainable_policies_only=False)
        .experimental(_validate_config=True, _use_msgpack_checkpoints=True)
        .offline_data(input_="sampler", output=None)
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=5)
    )
    config.validate()
    assert config.to_dict()["num_cpus_for_main_process"] == 1
    with pytest.raises(ConfigError, match="num_gpus_per_learner"):
        config.copy().resources(num_gpus=1).validate()
    with pytest.raises(ConfigError, match="does not support native"):
        config.copy().checkpointing(export_native_model_files=True).validate()
    with pytest.raises(ConfigError, match="does not support offline RL"):
        config.copy().offline_data(input_read_method="read_parquet")


def test_evaluation_parallel_to_training_with_auto_duration():
    """Mirrors rllib/examples/evaluation/evaluation_parallel_to_training.py:
    `evaluation(evaluation_parallel_to_training=True, evaluation_duration="auto",
    evaluation_interval=1, evaluation_num_env_runners=...)` and the evaluation results
    under `result[EVALUATION_RESULTS][ENV_RUNNER_RESULTS]`."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=256)
        .evaluation(
            evaluation_parallel_to_training=True,
            evaluation_duration="auto",
            evaluation_duration_unit="episodes",
            evaluation_interval=1,
            evaluation_num_env_runners=0,
        )
        .env_runners(num_envs_per_env_runner=2)
    )
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    assert result[EVALUATION_RESULTS][ENV_RUNNER_RESULTS]["num_episodes"] == 2  # one per env
    with pytest.raises(ConfigError, match="evaluation_parallel_to_training=True"):
        config.copy().evaluation(evaluation_parallel_to_training=False).validate()


def custom_eval_function(algorithm, eval_env_runner_group):
    """Evaluates two episodes and reports their mean return under its own key."""
    parts = eval_env_runner_group.sample_episodes(2, None, explore=False)
    returns = [r for part in parts for r in part["episode_returns"]]
    env_steps = sum(part["num_env_steps"] for part in parts)
    return {"custom_return_mean": sum(returns) / len(returns)}, env_steps, env_steps


def test_custom_evaluation_function():
    """Mirrors rllib/examples/evaluation/custom_evaluation.py: `evaluation(
    custom_evaluation_function=fn, evaluation_interval=1)` where `fn(algorithm,
    eval_env_runner_group)` returns (results, env_steps, agent_steps)."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=256)
        .evaluation(
            custom_evaluation_function=custom_eval_function,
            evaluation_interval=1,
            evaluation_num_env_runners=0,
        )
    )
    algo = config.build_algo()
    result = algo.train()
    assert result[EVALUATION_RESULTS]["custom_return_mean"] > 0
    stored = algo.config.to_dict()["custom_evaluation_function"]
    assert stored["__callable__"].endswith("custom_eval_function")
    algo.stop()


def test_reporting_min_time_s_per_iteration():
    """Mirrors rllib/algorithms/algorithm_config.py's `reporting(min_time_s_per_iteration=
    ...)` (RLlib's API docs): one `train()` repeats training steps for that long."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=128, minibatch_size=64, num_epochs=1)
        .reporting(min_time_s_per_iteration=0.3)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    result = algo.train()
    assert time.perf_counter() - start >= 0.3
    assert result[ENV_RUNNER_RESULTS]["num_env_steps_sampled"] > 128  # several steps
    algo.stop()


def test_new_api_stack_migration_guide_config():
    """Mirrors doc/source/rllib/new-api-stack-migration-guide.rst: `api_stack(
    enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)`,
    `env_runners(num_env_runners=...)`, `training(minibatch_size=..., num_epochs=...)` and
    `rl_module(model_config=DefaultModelConfig(...))`."""
    config = (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=256, minibatch_size=64, num_epochs=4)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32, 32], vf_share_layers=True))
    )
    algo = config.build_algo()
    result = algo.train()
    assert result[LEARNER_RESULTS]["default_policy"]["num_module_steps_trained"] == 4 * 256
    assert algo.get_module().vf_encoder is None  # vf_share_layers
    algo.stop()


def test_rl_module_model_config_dict_older_name():
    """Mirrors doc/source/rllib/rllib-rlmodule.rst of RLlib 2.9-2.10, which configured
    the default module with `rl_module(model_config_dict={...})`."""
    config = (
        PPOConfig().environment("CartPole-v1").rl_module(model_config_dict={"fcnet_hiddens": [24]})
    )
    assert config.model_config == {"fcnet_hiddens": [24]}
    algo = config.training(train_batch_size=128).build_algo()
    assert algo.get_module().pi_encoder.layers[0].out_features == 24
    algo.stop()


def test_metric_constants_index_the_result_dict():
    """Mirrors rllib/utils/metrics/__init__.py as the tuned examples use it: stop criteria
    and result lookups keyed by `ENV_RUNNER_RESULTS`, `EPISODE_RETURN_MEAN`,
    `NUM_ENV_STEPS_SAMPLED_LIFETIME`, `TRAINING_ITERATION`."""
    algo = PPOConfig().environment("CartPole-v1").training(train_batch_size=200).build_algo()
    result = algo.train()
    algo.stop()
    stop = {
        f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": 450.0,
        NUM_ENV_STEPS_SAMPLED_LIFETIME: 200,
        TRAINING_ITERATION: 5,
    }
    assert result[NUM_ENV_STEPS_SAMPLED_LIFETIME] >= stop[NUM_ENV_STEPS_SAMPLED_LIFETIME]
    assert result[TRAINING_ITERATION] == 1
    assert result[ENV_RUNNER_RESULTS][EPISODE_RETURN_MEAN] > 0


def test_replay_buffer_doc_prioritized_episode_replay_buffer():
    """Mirrors doc/source/rllib/rllib-replay-buffers.rst: `DQNConfig().training(
    replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": ...,
    "alpha": ..., "beta": ...})` (and the uniform `EpisodeReplayBuffer`)."""
    for kind in ("PrioritizedEpisodeReplayBuffer", "EpisodeReplayBuffer"):
        config = (
            DQNConfig()
            .environment("CartPole-v1")
            .training(
                replay_buffer_config={"type": kind, "capacity": 2000, "alpha": 0.6, "beta": 0.4},
                num_steps_sampled_before_learning_starts=100,
                train_batch_size=32,
            )
            .reporting(min_time_s_per_iteration=None)
        )
        algo = config.build_algo()
        result = algo.train()
        algo.stop()
        assert result["replay_buffer"]["num_transitions"] == 1000
        prioritized = type(algo.replay.buffers["default_policy"]).__name__
        assert prioritized.startswith("Prioritized") == (kind == "PrioritizedEpisodeReplayBuffer")


def test_sac_pendulum_tuned_example_settings():
    """Mirrors rllib/tuned_examples/sac/pendulum_sac.py: SAC with `n_step=(2, 5)`, a
    PrioritizedEpisodeReplayBuffer, `lr=None` with actor/critic/alpha rates, and a
    DefaultModelConfig with a torch.nn.init function and head initializer kwargs."""
    from torch import nn

    config = (
        SACConfig()
        .environment("Pendulum-v1")
        .training(
            initial_alpha=1.001,
            actor_lr=2e-4,
            critic_lr=8e-4,
            alpha_lr=9e-4,
            lr=None,
            target_entropy="auto",
            n_step=(2, 5),
            tau=0.005,
            train_batch_size_per_learner=64,
            target_network_update_freq=1,
            replay_buffer_config={
                "type": "PrioritizedEpisodeReplayBuffer",
                "capacity": 100000,
                "alpha": 1.0,
                "beta": 0.0,
            },
            num_steps_sampled_before_learning_starts=256,
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[64, 64],
                fcnet_activation="relu",
                fcnet_kernel_initializer=nn.init.xavier_uniform_,
                head_fcnet_hiddens=[],
                head_fcnet_activation=None,
                head_fcnet_kernel_initializer="orthogonal_",
                head_fcnet_kernel_initializer_kwargs={"gain": 0.01},
            ),
        )
        .reporting(metrics_num_episodes_for_smoothing=5, min_time_s_per_iteration=None)
    )
    config.training(min_sample_timesteps_per_iteration=400)
    algo = config.build_algo()
    result = algo.train()
    arrays, _ = algo.replay.buffers["default_policy"].get_state()
    n_steps = set(arrays[Columns.N_STEPS][:400].tolist())  # n drawn per stored fragment
    algo.stop()
    assert result["learners"]["default_policy"]["num_module_steps_trained"] > 0
    assert n_steps <= {1, 2, 3, 4, 5} and len(n_steps - {1}) >= 2


def test_dqn_cartpole_tuned_example_settings():
    """Mirrors rllib/tuned_examples/dqn/cartpole_dqn.py: DQN with `n_step=(2, 5)`,
    `double_q`, `dueling`, an epsilon schedule of tuples, a PrioritizedEpisodeReplayBuffer
    and DefaultModelConfig bias initializers with `head_fcnet_hiddens`."""
    config = (
        DQNConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(env="CartPole-v1")
        .training(
            lr=0.0005,
            train_batch_size_per_learner=32,
            replay_buffer_config={
                "type": "PrioritizedEpisodeReplayBuffer",
                "capacity": 50000,
                "alpha": 0.6,
                "beta": 0.4,
            },
            n_step=(2, 5),
            double_q=True,
            dueling=True,
            epsilon=[(0, 1.0), (10000, 0.02)],
            num_steps_sampled_before_learning_starts=200,
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[64],
                fcnet_activation="tanh",
                fcnet_bias_initializer="zeros_",
                head_fcnet_bias_initializer="zeros_",
                head_fcnet_hiddens=[32],
            ),
        )
    )
    algo = config.build_algo()
    assert [layer.out_features for layer in algo.get_module().advantage_head.layers] == [32, 2]
    result = algo.train()
    algo.stop()
    assert 0.9 < result["learners"]["default_policy"]["curr_epsilon"] <= 1.0


def test_algorithm_config_overrides_for_evaluation():
    """Mirrors doc/source/rllib/algorithm-config.rst ("Evaluation settings"):
    `evaluation(evaluation_config=AlgorithmConfig.overrides(explore=False))`."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=200)
        .evaluation(
            evaluation_interval=1,
            evaluation_duration=3,
            evaluation_config=AlgorithmConfig.overrides(explore=False),
        )
    )
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    assert result[EVALUATION_RESULTS][ENV_RUNNER_RESULTS]["num_episodes"] == 3
