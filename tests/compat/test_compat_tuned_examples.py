"""RLlib's tuned examples (Python and YAML forms), with `scalerl` imports.

Each test makes the API calls of (or loads the keys of) the RLlib file named in its
docstring (paths in the ray-project/ray repository), written anew for scalerl, with
stop criteria of one iteration and Ray EnvRunners set to 0.
"""

from __future__ import annotations

import textwrap
import warnings

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from scalerl import register_env
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.registry import get_algorithm_class
from scalerl.cli import load_config_file
from scalerl.connectors.env_to_module import MeanStdFilter
from scalerl.core.rl_module.default_model_config import DefaultModelConfig
from scalerl.examples.envs.classes.multi_agent import MultiAgentStatelessCartPole
from scalerl.examples.envs.classes.stateless_cartpole import StatelessCartPole
from scalerl.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from scalerl.utils.test_utils import (
    add_rllib_example_script_args,
    run_rllib_example_script_experiment,
)


def one_iteration_args(**defaults):
    """RLlib's example-script args for a one-iteration, silent run."""
    parser = add_rllib_example_script_args(**defaults)
    return parser.parse_args(["--stop-iters=1", "--verbose=0"])


def build_from_yaml(tmp_path, text: str):
    """Write an RLlib tuned-example YAML, read it as `scalerl train --config` does, and
    return (config, stop, algorithm name)."""
    path = tmp_path / "tuned.yaml"
    path.write_text(textwrap.dedent(text))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        settings, stop, algo_name = load_config_file(str(path))
    config = get_algorithm_class(algo_name).get_default_config().update_from_dict(settings)
    return config, stop, algo_name


def test_cartpole_ppo_yaml_with_legacy_keys(tmp_path):
    """Mirrors rllib/tuned_examples/ppo/cartpole-ppo.yaml: `episode_reward_mean` and
    `timesteps_total` stop keys, `framework: tf` ("works for both"), `num_workers`,
    `observation_filter`, `num_sgd_iter`, a `model` dict, `enable_connectors`
    (num_workers: 0 instead of 1)."""
    config, stop, algo_name = build_from_yaml(
        tmp_path,
        """
        cartpole-ppo:
            env: CartPole-v1
            run: PPO
            stop:
                episode_reward_mean: 150
                timesteps_total: 100000
            config:
                framework: tf
                gamma: 0.99
                lr: 0.0003
                num_workers: 0
                observation_filter: MeanStdFilter
                num_sgd_iter: 6
                vf_loss_coeff: 0.01
                train_batch_size: 512
                model:
                    fcnet_hiddens: [32]
                    fcnet_activation: linear
                    vf_share_layers: true
                enable_connectors: True
        """,
    )
    assert algo_name == "PPO" and stop == {"stop_reward": 150, "stop_timesteps": 100000}
    assert (config.num_epochs, config.num_env_runners, config.framework_str) == (6, 0, "torch")
    algo = config.build_algo()
    assert algo.get_module().vf_encoder is None
    assert algo.train()[ENV_RUNNER_RESULTS]["num_env_steps_sampled"] == 512
    algo.stop()


def test_pendulum_ppo_yaml_with_yaml_exponents(tmp_path):
    """Mirrors rllib/tuned_examples/ppo/pendulum-ppo.yaml: `num_envs_per_worker`,
    `lambda`, `sgd_minibatch_size`, `num_sgd_iter`, `vf_clip_param`, a `model` dict, and
    a learning rate written `3e-4` (PyYAML reads it as a string); Pendulum-v0 is v1 now."""
    config, stop, _ = build_from_yaml(
        tmp_path,
        """
        pendulum-ppo:
            env: Pendulum-v1
            run: PPO
            stop:
                episode_reward_mean: -500
                timesteps_total: 4e5
            config:
                train_batch_size: 512
                vf_clip_param: 10.0
                num_workers: 0
                num_envs_per_worker: 4
                lambda: 0.1
                gamma: 0.95
                lr: 3e-4
                sgd_minibatch_size: 64
                num_sgd_iter: 6
                model:
                    fcnet_hiddens: [64, 64]
                observation_filter: MeanStdFilter
        """,
    )
    assert config.lr == 0.0003 and isinstance(config.lr, float)
    assert stop["stop_timesteps"] == 400000
    assert (config.lambda_, config.minibatch_size, config.num_envs_per_env_runner) == (0.1, 64, 4)
    algo = config.build_algo()
    assert algo.train()[ENV_RUNNER_RESULTS]["num_env_steps_sampled"] == 512
    algo.stop()


def test_cartpole_dqn_yaml_with_old_exploration_and_replay_keys(tmp_path):
    """Mirrors rllib/tuned_examples/dqn/cartpole-dqn.yaml's old-stack keys: an
    EpsilonGreedy `exploration_config`, `replay_buffer_config` with RLlib's
    MultiAgentPrioritizedReplayBuffer type, `num_steps_sampled_before_learning_starts`,
    `n_step`, `target_network_update_freq`, and a `model` dict."""
    config, _, algo_name = build_from_yaml(
        tmp_path,
        """
        cartpole-dqn:
            env: CartPole-v1
            run: DQN
            stop:
                episode_reward_mean: 150
            config:
                framework: torch
                model:
                    fcnet_hiddens: [64]
                    fcnet_activation: linear
                n_step: 3
                exploration_config:
                    type: EpsilonGreedy
                    initial_epsilon: 1.0
                    final_epsilon: 0.02
                    epsilon_timesteps: 10000
                replay_buffer_config:
                    type: MultiAgentPrioritizedReplayBuffer
                    capacity: 50000
                num_steps_sampled_before_learning_starts: 500
                target_network_update_freq: 500
                train_batch_size: 32
        """,
    )
    assert algo_name == "DQN" and config.epsilon == [[0, 1.0], [10000, 0.02]]
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    assert type(algo.replay.buffers["default_policy"]).__name__ == "PrioritizedReplayBuffer"
    assert result["learners"]["default_policy"]["curr_epsilon"] < 1.0


def test_stateless_cartpole_ppo_lstm():
    """Mirrors rllib/tuned_examples/ppo/stateless_cartpole_ppo.py: StatelessCartPole,
    `env_to_module_connector=lambda env: MeanStdFilter()`, `use_kl_loss=True`, and
    `rl_module(model_config_dict={"use_lstm": True, "uses_new_env_runners": True, ...})`."""
    args = one_iteration_args(default_timesteps=2000000, default_reward=350.0)
    config = (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(StatelessCartPole)
        .env_runners(env_to_module_connector=lambda env: MeanStdFilter())
        .training(
            lr=0.0003,
            gamma=0.99,
            num_epochs=2,
            vf_loss_coeff=0.05,
            use_kl_loss=True,
            train_batch_size=500,
        )
        .rl_module(
            model_config_dict={
                "vf_share_layers": True,
                "use_lstm": True,
                "uses_new_env_runners": True,
                "max_seq_len": 50,
                "lstm_cell_size": 32,
            },
        )
    )
    results = run_rllib_example_script_experiment(config, args)
    assert results[ENV_RUNNER_RESULTS]["num_env_steps_sampled"] == 500
    assert config.model_config["use_lstm"] and "uses_new_env_runners" not in config.model_config


def test_multi_agent_stateless_cartpole_ppo_lstm():
    """Mirrors rllib/tuned_examples/ppo/multi_agent_stateless_cartpole_ppo.py:
    MultiAgentStatelessCartPole registered by name, `MeanStdFilter(multi_agent=True)`,
    recurrent modules per policy, a stop dict keyed by metric constants."""
    args = one_iteration_args(default_timesteps=4000000)
    register_env("multi_stateless_cart", lambda _: MultiAgentStatelessCartPole({"num_agents": 2}))
    config = (
        PPOConfig()
        .environment("multi_stateless_cart")
        .env_runners(env_to_module_connector=lambda env: MeanStdFilter(multi_agent=True))
        .training(lr=0.0003, gamma=0.99, num_epochs=2, vf_loss_coeff=0.05, use_kl_loss=True)
        .training(train_batch_size=400)
        .rl_module(
            model_config_dict={
                "use_lstm": True,
                "uses_new_env_runners": True,
                "max_seq_len": 50,
                "lstm_cell_size": 32,
            },
        )
        .multi_agent(
            policy_mapping_fn=lambda aid, *arg, **kw: f"p{aid}",
            policies={"p0", "p1"},
        )
    )
    stop = {
        NUM_ENV_STEPS_SAMPLED_LIFETIME: 400,
        f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": 300.0 * 2,
    }
    results = run_rllib_example_script_experiment(config, args, stop=stop)
    assert results[NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 400
    assert set(results["learners"]) >= {"p0", "p1"}


def test_cartpole_truncated_ppo_with_evaluation_env_override():
    """Mirrors rllib/tuned_examples/ppo/cartpole_truncated_ppo.py: a TimeLimit-wrapped
    CartPole registered by name for training, `evaluation_config=PPOConfig.overrides(
    env="CartPole-v1")`, and a stop dict reaching into `EVALUATION_RESULTS`."""
    args = one_iteration_args()
    register_env("cartpole_truncated", lambda _: TimeLimit(gym.make("CartPole-v1"), 50))
    config = (
        PPOConfig()
        .environment("cartpole_truncated")
        .env_runners(num_envs_per_env_runner=4)
        .training(lr=0.0003, num_epochs=2, vf_loss_coeff=0.01, train_batch_size=400)
        .evaluation(
            evaluation_config=PPOConfig.overrides(env="CartPole-v1"),
            evaluation_interval=1,
            evaluation_num_env_runners=0,
            evaluation_duration=2,
        )
    )
    stop = {
        NUM_ENV_STEPS_SAMPLED_LIFETIME: 400,
        f"{EVALUATION_RESULTS}/{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": 200.0,
    }
    results = run_rllib_example_script_experiment(config, args, stop=stop)
    assert results[ENV_RUNNER_RESULTS]["episode_len_mean"] <= 50
    assert results[EVALUATION_RESULTS][ENV_RUNNER_RESULTS]["num_episodes"] == 2


def test_cartpole_ppo_py_tuned_example():
    """Mirrors rllib/tuned_examples/ppo/cartpole_ppo.py: PPO with `num_epochs`,
    `vf_loss_coeff`, DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="linear",
    vf_share_layers=True), and a stop dict of metric constants."""
    args = one_iteration_args(default_reward=450.0, default_timesteps=300000)
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01, train_batch_size=500)
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[32], fcnet_activation="linear", vf_share_layers=True
            ),
        )
    )
    stop = {
        f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": args.stop_reward,
        NUM_ENV_STEPS_SAMPLED_LIFETIME: 500,
    }
    results = run_rllib_example_script_experiment(config, args, stop=stop)
    assert results[NUM_ENV_STEPS_SAMPLED_LIFETIME] == 500


def test_multi_agent_pendulum_sac_tuned_example():
    """Mirrors rllib/tuned_examples/sac/multi_agent_pendulum_sac.py: SAC on
    MultiAgentPendulum registered with `lambda cfg: MultiAgentPendulum(config=cfg)`, a
    MultiAgentPrioritizedEpisodeReplayBuffer, `n_step=(2, 5)`, torch.nn.init functions in
    DefaultModelConfig, policies p0/p1 and a stop dict of metric constants."""
    from torch import nn

    from scalerl.algorithms.sac import SACConfig
    from scalerl.examples.envs.classes.multi_agent import MultiAgentPendulum

    args = one_iteration_args(default_timesteps=500000)
    register_env("multi_agent_pendulum", lambda cfg: MultiAgentPendulum(config=cfg))
    config = (
        SACConfig()
        .environment("multi_agent_pendulum", env_config={"num_agents": 2})
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
                "type": "MultiAgentPrioritizedEpisodeReplayBuffer",
                "capacity": 100000,
                "alpha": 1.0,
                "beta": 0.0,
            },
            num_steps_sampled_before_learning_starts=256,
            min_sample_timesteps_per_iteration=400,
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[32, 32],
                fcnet_activation="relu",
                fcnet_kernel_initializer=nn.init.xavier_uniform_,
                head_fcnet_hiddens=[],
                head_fcnet_activation=None,
                head_fcnet_kernel_initializer=nn.init.orthogonal_,
                head_fcnet_kernel_initializer_kwargs={"gain": 0.01},
            ),
        )
        .reporting(metrics_num_episodes_for_smoothing=5)
        .multi_agent(
            policy_mapping_fn=lambda aid, *arg, **kw: f"p{aid}",
            policies={"p0", "p1"},
        )
    )
    stop = {
        NUM_ENV_STEPS_SAMPLED_LIFETIME: 400,
        f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}": -450.0 * 2,
    }
    results = run_rllib_example_script_experiment(config, args, stop=stop)
    assert {"p0", "p1"} <= set(results["learners"])
    assert "qf_loss" in results["learners"]["p0"]


def test_multi_agent_cartpole_dqn_tuned_example():
    """Mirrors rllib/tuned_examples/dqn/multi_agent_cartpole_dqn.py: DQN on
    MultiAgentCartPole with a MultiAgentPrioritizedEpisodeReplayBuffer, `n_step=(2, 5)`,
    `num_atoms=1`, an epsilon schedule of tuples, DefaultModelConfig with
    `head_fcnet_hiddens`, and policies p0/p1."""
    from scalerl.algorithms.dqn import DQNConfig
    from scalerl.examples.envs.classes.multi_agent import MultiAgentCartPole

    args = one_iteration_args(default_timesteps=500000)
    register_env("multi_agent_cartpole", lambda cfg: MultiAgentCartPole(config=cfg))
    config = (
        DQNConfig()
        .environment(env="multi_agent_cartpole", env_config={"num_agents": 2})
        .training(
            lr=0.00065,
            train_batch_size_per_learner=48,
            replay_buffer_config={
                "type": "MultiAgentPrioritizedEpisodeReplayBuffer",
                "capacity": 50000,
                "alpha": 0.6,
                "beta": 0.4,
            },
            n_step=(2, 5),
            double_q=True,
            num_atoms=1,
            dueling=True,
            epsilon=[(0, 1.0), (20000, 0.02)],
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
        .multi_agent(
            policy_mapping_fn=lambda aid, *arg, **kw: f"p{aid}",
            policies={"p0", "p1"},
        )
    )
    results = run_rllib_example_script_experiment(config, args)
    assert {"p0", "p1"} <= set(results["learners"])
    assert results["learners"]["p1"]["curr_epsilon"] < 1.0
