"""RLlib's multi-agent documentation and example scripts, with `scalerl` imports.

Each test makes the API calls of the RLlib file named in its docstring (paths in the
ray-project/ray repository), written anew for scalerl. Example scripts run through
`run_rllib_example_script_experiment` with short stop criteria; `ray.tune.register_env`
is replaced by `scalerl.register_env`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from scalerl import register_env
from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.rl_module.default_model_config import DefaultModelConfig
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.core.rl_module.rl_module import RLModuleSpec
from scalerl.env.multi_agent_env import MultiAgentEnv, make_multi_agent
from scalerl.examples.envs.classes.multi_agent import MultiAgentCartPole, MultiAgentPendulum
from scalerl.examples.envs.classes.multi_agent.tic_tac_toe import TicTacToe
from scalerl.examples.rl_modules.classes.random_rlm import RandomRLModule
from scalerl.utils.test_utils import (
    add_rllib_example_script_args,
    run_rllib_example_script_experiment,
)


def short_args(*flags: str, **defaults):
    """RLlib's example-script args, stopped after one iteration, printing nothing."""
    parser = add_rllib_example_script_args(**defaults)
    return parser.parse_args(["--stop-iters=1", "--verbose=0", *flags])


def test_multi_agent_cartpole_example():
    """Mirrors rllib/examples/multi_agent/multi_agent_cartpole.py: `register_env` with
    MultiAgentCartPole, `num_envs_per_env_runner`, policies `p0..pN-1` mapped by agent id,
    run by `run_rllib_example_script_experiment(base_config, args)`."""
    args = short_args("--num-agents=2", default_reward=600.0)
    register_env("env", lambda _: MultiAgentCartPole(config={"num_agents": args.num_agents}))
    base_config = (
        PPOConfig()
        .environment("env")
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=1000)
        .multi_agent(
            policies={f"p{i}" for i in range(args.num_agents)},
            policy_mapping_fn=lambda aid, *a, **kw: f"p{aid}",
        )
    )
    results = run_rllib_example_script_experiment(base_config, args)
    assert set(results["learners"]) >= {"p0", "p1"}
    assert set(results["env_runners"]["module_episode_returns_mean"]) == {"p0", "p1"}


def test_custom_heuristic_policy_with_multi_rl_module_spec():
    """Mirrors rllib/examples/multi_agent/custom_heuristic_policy.py: a learnable policy
    and a RandomRLModule given through `rl_module(rl_module_spec=MultiRLModuleSpec(...))`,
    `policies_to_train=["learnable_policy"]`."""
    args = short_args("--num-agents=2")
    register_env("multi_agent_cartpole", lambda _: MultiAgentCartPole({"num_agents": 2}))
    base_config = (
        PPOConfig()
        .environment("multi_agent_cartpole")
        .training(train_batch_size=500)
        .multi_agent(
            policies={"learnable_policy", "random"},
            policy_mapping_fn=lambda agent_id, *args, **kwargs: ["learnable_policy", "random"][
                agent_id % 2
            ],
            policies_to_train=["learnable_policy"],
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    "learnable_policy": RLModuleSpec(),
                    "random": RLModuleSpec(module_class=RandomRLModule),
                }
            ),
        )
    )
    results = run_rllib_example_script_experiment(base_config, args)
    assert "learnable_policy" in results["learners"]
    assert "random" not in results["learners"]


class TwoSpacesEnv(MultiAgentEnv):
    """Two agents with different observation and action spaces; episodes never end."""

    def __init__(self, config=None):
        super().__init__()
        self.agents = self.possible_agents = ["agent0", "agent1"]
        self.observation_spaces = {
            "agent0": gym.spaces.Box(-1.0, 1.0, (10,), np.float32),
            "agent1": gym.spaces.Box(-1.0, 1.0, (20,), np.float32),
        }
        self.action_spaces = {"agent0": gym.spaces.Discrete(2), "agent1": gym.spaces.Discrete(3)}

    def reset(self, *, seed=None, options=None):
        return {a: self.get_observation_space(a).sample() for a in self.agents}, {}

    def step(self, action_dict):
        obs = {a: self.get_observation_space(a).sample() for a in action_dict}
        rewards = {a: float(action_dict[a] == 1) for a in action_dict}
        flags = {a: False for a in action_dict}
        return obs, rewards, {**flags, "__all__": False}, {**flags, "__all__": False}, {}


def test_different_spaces_for_agents():
    """Mirrors rllib/examples/multi_agent/different_spaces_for_agents.py: a MultiAgentEnv
    with `observation_spaces`/`action_spaces` dicts, `train_batch_size=1024`, policies
    main0/main1 mapped from the agent id, `policies_to_train=["main0"]`."""
    args = short_args(default_reward=80.0)
    base_config = (
        PPOConfig()
        .environment(env=TwoSpacesEnv)
        .training(train_batch_size=1024)
        .multi_agent(
            policies={"main0", "main1"},
            policy_mapping_fn=(lambda aid, episode, **kw: f"main{aid[-1]}"),
            policies_to_train=["main0"],
        )
    )
    results = run_rllib_example_script_experiment(base_config, args)
    assert "main0" in results["learners"] and "main1" not in results["learners"]
    assert results["env_runners"]["num_env_steps_sampled"] == 1024


def test_agents_act_in_sequence_tic_tac_toe():
    """Mirrors rllib/examples/envs/agents_act_in_sequence.py: TicTacToe (turn-based) with
    policies player1/player2 mapped by `lambda agent_id, episode, **kw: agent_id`."""
    args = short_args("--num-agents=2")
    base_config = (
        PPOConfig()
        .environment(TicTacToe)
        .training(train_batch_size=500)
        .multi_agent(
            policies={"player1", "player2"},
            policy_mapping_fn=lambda agent_id, episode, **kw: agent_id,
        )
    )
    results = run_rllib_example_script_experiment(base_config, args)
    assert set(results["env_runners"]["agent_episode_returns_mean"]) == {"player1", "player2"}


def test_multi_agent_pendulum_with_old_model_argument():
    """Mirrors rllib/examples/multi_agent/multi_agent_pendulum.py: MultiAgentPendulum,
    `training(..., model={"fcnet_activation": "relu"}, vf_clip_param=10.0)` (RLlib's old
    `model` argument) and `rl_module(model_config=DefaultModelConfig(...))`."""
    args = short_args("--num-agents=2", default_reward=-400.0)
    register_env("env", lambda _: MultiAgentPendulum(config={"num_agents": args.num_agents}))
    base_config = (
        PPOConfig()
        .environment("env")
        .training(
            train_batch_size_per_learner=512,
            minibatch_size=64,
            lambda_=0.1,
            gamma=0.95,
            lr=0.0003,
            model={"fcnet_activation": "relu"},
            vf_clip_param=10.0,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_activation="relu"))
        .multi_agent(
            policies={f"p{i}" for i in range(args.num_agents)},
            policy_mapping_fn=lambda aid, *a, **kw: f"p{aid}",
        )
    )
    assert base_config.model_config["fcnet_activation"] == "relu"
    results = run_rllib_example_script_experiment(base_config, args)
    assert results["env_runners"]["num_env_steps_sampled"] >= 512


class SimultaneousGuess(MultiAgentEnv):
    """Both agents act every step; `truncateds` holds no "__all__" (as in RLlib's docs)."""

    def __init__(self, config=None):
        super().__init__()
        self.agents = self.possible_agents = ["a", "b"]
        self.observation_spaces = {a: gym.spaces.Discrete(3) for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(3) for a in self.agents}
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"a": 0, "b": 0}, {}

    def step(self, action_dict):
        self.t += 1
        rewards = {"a": float(action_dict["a"] == 1), "b": float(action_dict["b"] == 2)}
        done = self.t >= 5
        obs = {"a": int(action_dict["b"]), "b": int(action_dict["a"])}
        return obs, rewards, {"__all__": done}, {}, {}


def test_multi_agent_envs_rst_env_without_all_in_truncateds():
    """Mirrors doc/source/rllib/multi-agent-envs.rst ("Agents acting simultaneously"): a
    MultiAgentEnv whose `step()` returns an empty `truncateds` dict, trained with one
    shared policy."""
    config = (
        PPOConfig()
        .environment(SimultaneousGuess)
        .training(train_batch_size=200)
        .multi_agent(
            policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kw: "shared"
        )
    )
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    assert result["env_runners"]["num_episodes"] == 40  # 5-step episodes


def test_multi_agent_envs_rst_make_multi_agent():
    """Mirrors doc/source/rllib/multi-agent-envs.rst ("make_multi_agent"): turn a
    Gymnasium id into a MultiAgentEnv class, instantiate with `{"num_agents": 2}` and step."""
    ma_cartpole_cls = make_multi_agent("CartPole-v1")
    ma_cartpole = ma_cartpole_cls({"num_agents": 2})
    obs, infos = ma_cartpole.reset(seed=0)
    assert set(obs) == {0, 1}
    obs, rewards, terminateds, truncateds, infos = ma_cartpole.step({0: 0, 1: 1})
    assert rewards == {0: 1.0, 1: 1.0} and terminateds["__all__"] is False


def test_multi_agent_envs_rst_specs_per_policy():
    """Mirrors doc/source/rllib/multi-agent-envs.rst ("Multi-agent setup"): policies given
    as a set, and per-policy model settings through `rl_module(rl_module_spec=
    MultiRLModuleSpec(rl_module_specs={id: RLModuleSpec(model_config=...)}))`."""
    config = (
        PPOConfig()
        .environment(MultiAgentCartPole, env_config={"num_agents": 2})
        .training(train_batch_size=400)
        .multi_agent(
            policies={"p0", "p1"},
            policy_mapping_fn=lambda agent_id, episode, **kwargs: f"p{agent_id}",
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    "p0": RLModuleSpec(model_config=DefaultModelConfig(fcnet_hiddens=[16])),
                    "p1": RLModuleSpec(model_config=DefaultModelConfig(fcnet_hiddens=[8])),
                }
            )
        )
    )
    algo = config.build_algo()
    assert algo.get_module("p0").pi_encoder.layers[0].out_features == 16
    assert algo.get_module("p1").pi_encoder.layers[0].out_features == 8
    assert algo.train()["training_iteration"] == 1
    algo.stop()
