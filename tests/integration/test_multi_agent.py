"""Multi-agent training end to end (issue 5): shared and frozen policies, different spaces,
turn-based play, agents that finish early or join late, checkpoints, league play
(`add_module` / `remove_module`), Ray runners, and the errors a user can make."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch
from multi_agent_test_envs import (
    BadObsEnv,
    Float64Walker,
    IndependentCartPoles,
    MixedSpaces,
    PayTheOther,
)

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.sac import SACConfig
from scalerl.core.rl_module import RLModule
from scalerl.env.multi_agent_env import make_multi_agent
from scalerl.env.registry import register_env
from scalerl.env.wrappers import ParallelPettingZooEnv, PettingZooEnv
from scalerl.examples.envs import MixedAgentsEnv, MultiAgentCartPole, TicTacToe
from scalerl.utils.errors import CheckpointError, ConfigError, EnvError

SMALL = dict(train_batch_size=200, minibatch_size=50, num_epochs=2)


def config(env, policies, mapping, **multi) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env)
        .multi_agent(policies=policies, policy_mapping_fn=mapping, **multi)
        .training(**SMALL)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )


def by_agent_id(agent_id, episode, **kwargs):
    return f"p{agent_id}"


def weights_of(module: RLModule) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: RLModule) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_two_policies_train_and_report_per_agent_and_per_module_returns():
    algo = config(IndependentCartPoles, {"p0", "p1"}, by_agent_id).build_algo()
    result = algo.train()
    runners = result["env_runners"]
    assert sorted(result["learners"]) == ["p0", "p1"]
    assert set(runners["agent_episode_returns_mean"]) == {0, 1}
    assert set(runners["module_episode_returns_mean"]) == {"p0", "p1"}
    # The episode return is the sum over agents (as RLlib).
    assert runners["episode_return_mean"] == pytest.approx(
        sum(runners["agent_episode_returns_mean"].values())
    )
    # Every agent step was trained once per epoch: CartPole pays 1 per agent step.
    batch, metrics = algo.env_runner_group.local_runner.sample(50)
    assert sum(len(b["rewards"]) for b in batch.values()) == sum(
        metrics["num_agent_steps"].values()
    )
    assert algo.compute_single_action(np.zeros(4, np.float32), policy_id="p1") in (0, 1)
    with pytest.raises(ValueError, match="No module `p2`"):
        algo.get_module("p2")
    algo.stop()


def test_shared_policy_trains_on_every_agents_steps():
    algo = config(IndependentCartPoles, {"shared"}, lambda aid, ep, **kw: "shared").build_algo()
    result = algo.train()
    stats = result["learners"]["shared"]
    # 200 env steps x 2 agents, minus the steps of agents already done, x 2 epochs.
    assert 200 * 2 < stats["num_module_steps_trained"] <= 2 * 200 * 2
    assert algo.get_module("shared") is algo.get_module()
    algo.stop()


def test_frozen_policy_keeps_its_weights():
    algo = config(
        IndependentCartPoles, {"p0", "p1"}, by_agent_id, policies_to_train=["p0"]
    ).build_algo()
    before = {mid: weights_of(algo.get_module(mid)) for mid in ("p0", "p1")}
    result = algo.train()
    assert list(result["learners"]) == ["p0"]
    assert changed(before["p0"], algo.get_module("p0"))
    assert not changed(before["p1"], algo.get_module("p1"))
    algo.stop()


def test_agents_with_different_spaces_joining_late_and_finishing_early():
    mapping = lambda aid, ep, **kw: aid  # noqa: E731 (a lambda, stored as its table)
    algo = config(MixedSpaces, {"walker", "pusher"}, mapping).build_algo()
    assert algo.get_module("pusher").action_space.shape == (2,)
    runner = algo.env_runner_group.local_runner
    batch, metrics = runner.sample(16)  # two whole episodes of 8 steps
    walker, pusher = batch["walker"], batch["pusher"]
    assert walker["rewards"].shape == (16, 1) and pusher["rewards"].shape == (6, 1)
    # The pusher acts at steps 3, 4, 5 of each episode; its last step terminates it.
    np.testing.assert_array_equal(pusher["terminateds"][:, 0], [0, 0, 1, 0, 0, 1])
    assert (pusher["rewards"] <= 0).all()
    # The walker is truncated at step 8: bootstrapped from its final observation.
    np.testing.assert_array_equal(np.flatnonzero(walker["truncateds"][:, 0]), [7, 15])
    np.testing.assert_allclose(walker["trunc_obs"][:, 0], [0.8, 0.8])
    assert metrics["agent_episode_returns"]["walker"] == [8.0, 8.0]
    algo.train()
    algo.stop()


def test_observations_take_their_spaces_dtype():
    algo = config(Float64Walker, {"walker", "pusher"}, by_name).build_algo()
    batch, _ = algo.env_runner_group.local_runner.sample(8)
    assert batch["walker"]["obs"].dtype == np.float32
    assert batch["walker"]["trunc_obs"].dtype == np.float32
    assert batch["pusher"]["obs"].dtype == np.int64
    algo.train()
    algo.stop()


def test_turn_based_rewards_accumulate_between_turns():
    mapping = lambda aid, ep, **kw: aid  # noqa: E731
    algo = config(PayTheOther, {"p1", "p2"}, mapping).build_algo()
    batch, metrics = algo.env_runner_group.local_runner.sample(12)  # two 6-move games
    for mid in ("p1", "p2"):
        b = batch[mid]
        assert b["rewards"].shape == (6, 1)  # 3 moves per player per game
        # Each step: the mover's own 0.5 * action, plus 1 for the other's reply (p2's last
        # move ends the game: no reply).
        replied = [1, 1, 1, 1, 1, 1] if mid == "p1" else [1, 1, 0, 1, 1, 0]
        np.testing.assert_allclose(b["rewards"][:, 0], replied + 0.5 * b["actions"][:, 0])
        np.testing.assert_array_equal(np.flatnonzero(b["terminateds"][:, 0]), [2, 5])
        # Observations are the move counter at the player's turns.
        assert b["obs"][:3, 0].tolist() == ([0, 2, 4] if mid == "p1" else [1, 3, 5])
    assert metrics["episode_lens"] == [6, 6]
    algo.train()
    algo.stop()


def test_checkpoint_round_trip_and_single_module_restore(tmp_path):
    mapping = lambda aid, ep, **kw: f"p{aid}"  # noqa: E731
    algo = config(IndependentCartPoles, {"p0", "p1"}, mapping).build_algo()
    algo.train()
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    restored = Algorithm.from_checkpoint(path)
    obs = np.array([0.02, 0.1, -0.03, 0.2], np.float32)
    for mid in ("p0", "p1"):
        assert not changed(weights_of(algo.get_module(mid)), restored.get_module(mid))
        assert restored.compute_single_action(obs, policy_id=mid) == algo.compute_single_action(
            obs, policy_id=mid
        )
    # The lambda came back as the table of agents it mapped.
    assert restored.config.policy_mapping_fn(1, None) == "p1"
    assert restored.train()["env_runners"]["num_episodes"] > 0
    # One module alone: into a fresh algorithm, the other keeps its own weights.
    fresh = config(IndependentCartPoles, {"p0", "p1"}, mapping).debugging(seed=7).build_algo()
    p1_before = weights_of(fresh.get_module("p1"))
    fresh.restore_from_path(path, module_ids=["p0"])
    assert not changed(weights_of(algo.get_module("p0")), fresh.get_module("p0"))
    assert not changed(p1_before, fresh.get_module("p1"))
    with pytest.raises(CheckpointError, match="no module `p9`"):
        fresh.restore_from_path(path, module_ids=["p9"])
    # ... or as a standalone RLModule.
    module = RLModule.from_checkpoint(path, module_id="p1")
    assert not changed(weights_of(algo.get_module("p1")), module)
    for a in (algo, restored, fresh):
        a.stop()


def test_add_and_remove_module_on_a_running_algorithm():
    algo = config(IndependentCartPoles, {"p0", "p1"}, by_agent_id).build_algo()
    algo.train()
    frozen = weights_of(algo.get_module("p1"))
    # League play: a new module takes agent 1's place; p1 stays frozen as an opponent.
    algo.add_module(
        "p2",
        new_agent_to_module_mapping_fn=lambda aid, ep, **kw: "p0" if aid == 0 else "p2",
        new_should_module_be_updated=["p0", "p2"],
    )
    result = algo.train()
    assert sorted(result["learners"]) == ["p0", "p2"]
    assert set(result["env_runners"]["module_episode_returns_mean"]) >= {"p2"}
    assert not changed(frozen, algo.get_module("p1"))
    algo.remove_module("p1")
    with pytest.raises(ValueError, match="No module `p1`"):
        algo.get_module("p1")
    assert "p1" not in algo.env_runner_group.local_runner.module
    assert algo.evaluate()["env_runners"]["num_episodes"] == 10
    with pytest.raises(ConfigError, match="not a policy"):
        algo.remove_module("p2")  # the mapping still sends agent 1 there
    assert sorted(algo.config.policies) == ["p0", "p2"]  # nothing changed
    assert algo.train()["learners"].keys() == {"p0", "p2"}
    algo.stop()


def test_multi_agent_errors():
    with pytest.raises(ConfigError, match=r"mapped agent 1 to `p9`.*Policies: \['p0'"):
        config(
            IndependentCartPoles, {"p0"}, lambda aid, ep, **kw: "p0" if aid == 0 else "p9"
        ).build_algo()
    with pytest.raises(ConfigError, match="need a `policy_mapping_fn"):
        config(IndependentCartPoles, {"p0", "p1"}, None).build_algo()
    with pytest.raises(ConfigError, match="`policies_to_train` names \\['p7'\\]"):
        config(
            IndependentCartPoles, {"p0", "p1"}, by_agent_id, policies_to_train=["p7"]
        ).build_algo()
    with pytest.raises(ConfigError, match="different spaces"):
        config(MixedSpaces, {"one"}, lambda aid, ep, **kw: "one").build_algo()
    with pytest.raises(EnvError, match="agent 'p1'.*does not fit"):
        config(BadObsEnv, {"p"}, lambda aid, ep, **kw: "p").build_algo().train()
    # Recurrent modules: PPO trains them (tests/integration/test_multi_agent_memory.py);
    # DQN's and SAC's multi-agent runs are memoryless and say which setting to drop.
    with pytest.raises(ConfigError, match="`use_lstm=True` for policy `p0`.*DQN"):
        DQNConfig().environment(IndependentCartPoles).multi_agent(
            policies={"p0", "p1"}, policy_mapping_fn=by_agent_id
        ).rl_module(model_config={"use_lstm": True}).validate()


def test_tic_tac_toe_self_play_with_action_masks():
    algo = config(TicTacToe, {"shared"}, lambda aid, ep, **kw: "shared").build_algo()
    batch, metrics = algo.env_runner_group.local_runner.sample(60)
    b = batch["shared"]
    # Only legal moves are sampled: the mask of each observation allows the action taken.
    masks, actions = b["obs"]["action_mask"][:, 0], b["actions"][:, 0]
    assert (masks[np.arange(len(actions)), actions] == 1).all()
    assert set(metrics["agent_episode_returns"]) == {"player1", "player2"}
    # Zero-sum: every finished game pays +1/-1 or 0/0.
    for r1, r2 in zip(*(metrics["agent_episode_returns"][p] for p in ("player1", "player2"))):
        assert r1 + r2 == 0
    algo.train()
    algo.stop()


def test_mixed_agents_env_with_four_policies():
    algo = config(MixedAgentsEnv, {"walker", "scout", "latecomer", "blinker"}, by_name).build_algo()
    result = algo.train()
    assert sorted(result["learners"]) == ["blinker", "latecomer", "scout", "walker"]
    assert algo.compute_single_action(0, policy_id="scout").shape == (2,)
    algo.stop()


def by_name(agent_id, episode, **kwargs):
    return agent_id


@pytest.mark.parametrize("kind", ["aec", "parallel"])
def test_pettingzoo_envs_train(kind):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pettingzoo.classic import rps_v2, tictactoe_v3

    if kind == "aec":
        register_env("pz-tictactoe", lambda cfg: PettingZooEnv(tictactoe_v3.env()))
        env, agents = "pz-tictactoe", ("player_1", "player_2")
    else:
        register_env("pz-rps", lambda cfg: ParallelPettingZooEnv(rps_v2.parallel_env()))
        env, agents = "pz-rps", ("player_0", "player_1")
    algo = config(env, {"a", "b"}, lambda aid, ep, **kw: "a" if aid == agents[0] else "b")
    result = algo.build_algo().train()
    assert sorted(result["learners"]) == ["a", "b"]
    assert set(result["env_runners"]["agent_episode_returns_mean"]) == set(agents)


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_multi_agent_with_two_ray_runners(ray_local):
    algo = (
        # A lambda: Ray pickles it by value (the test module is not importable there).
        config(MultiAgentCartPole, {"p0", "p1"}, lambda aid, ep, **kw: f"p{aid}")
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .evaluation(evaluation_interval=1, evaluation_duration=2)
        .build_algo()
    )
    result = algo.train()
    assert result["env_runners"]["num_env_steps_sampled"] == 200
    assert sorted(result["learners"]) == ["p0", "p1"]
    assert set(result["evaluation"]["env_runners"]["module_episode_returns_mean"]) == {"p0", "p1"}
    algo.stop()


def test_dqn_multi_agent_replays_each_policy_apart(tmp_path):
    algo = (
        DQNConfig()
        .environment(IndependentCartPoles)
        .multi_agent(
            policies={"p0", "p1"},
            policy_mapping_fn=by_agent_id,
            algorithm_config_overrides_per_module={"p1": {"lr": 1e-4}},
        )
        .training(
            num_steps_sampled_before_learning_starts=64,
            min_sample_timesteps_per_iteration=128,
            store_buffer_in_checkpoints=True,
        )
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
        .build_algo()
    )
    algo.train()
    result = algo.train()
    assert sorted(result["learners"]) == ["p0", "p1"]
    assert result["learners"]["p1"]["curr_lr"] == pytest.approx(1e-4)
    assert result["learners"]["p0"]["curr_lr"] == pytest.approx(5e-4)
    sizes = {mid: len(b) for mid, b in algo.replay_buffers.items()}
    assert sizes["p0"] > 0 and sizes["p1"] > 0
    assert result["replay_buffer"]["num_transitions"] == sum(sizes.values())
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    assert {mid: len(b) for mid, b in restored.replay_buffers.items()} == sizes
    restored.stop()
    algo.stop()


def test_sac_multi_agent_with_a_frozen_policy(tmp_path):
    algo = (
        SACConfig()
        .environment(make_multi_agent("Pendulum-v1"), env_config={"num_agents": 2})
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=by_agent_id, policies_to_train=["p0"])
        .training(
            num_steps_sampled_before_learning_starts=64,
            min_sample_timesteps_per_iteration=64,
            train_batch_size=32,
            store_buffer_in_checkpoints=True,
        )
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
        .build_algo()
    )
    frozen = weights_of(algo.get_module("p1"))
    algo.train()
    result = algo.train()
    assert list(result["learners"]) == ["p0"]
    assert np.isfinite(result["learners"]["p0"]["qf_loss"])
    assert not changed(frozen, algo.get_module("p1"))
    # The runners act with the trained policy weights (synced policy-only).
    runner = algo.env_runner_group.local_runner.module["p0"].state_dict()
    policy = algo.get_module("p0").get_policy_state()
    assert policy and all(np.array_equal(runner[k].numpy(), v) for k, v in policy.items())
    action = algo.compute_single_action(np.zeros(3, np.float32), policy_id="p0")
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0
    restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt").checkpoint.path)
    assert {m: len(b) for m, b in restored.replay_buffers.items()} == {
        m: len(b) for m, b in algo.replay_buffers.items()
    }
    restored.stop()
    algo.stop()


@pytest.mark.parametrize("config_class", ["APEXDQNConfig", "R2D2Config"])
def test_single_agent_only_algorithms_say_so(config_class):
    from scalerl.algorithms.apex_dqn import APEXDQNConfig
    from scalerl.algorithms.r2d2 import R2D2Config

    cls = {"APEXDQNConfig": APEXDQNConfig, "R2D2Config": R2D2Config}[config_class]
    config = (
        cls()
        .environment(IndependentCartPoles)
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=by_agent_id)
    )
    with pytest.raises(ConfigError, match="single-agent so far"):
        config.validate()


def test_per_module_n_step_and_gamma_reach_the_replayed_transitions():
    """`algorithm_config_overrides_per_module` sets `n_step` and `gamma` of p1's buffer."""
    algo = (
        DQNConfig()
        .environment(IndependentCartPoles)
        .multi_agent(
            policies={"p0", "p1"},
            policy_mapping_fn=by_agent_id,
            algorithm_config_overrides_per_module={"p1": {"gamma": 0.5, "n_step": 3}},
        )
        .training(
            num_steps_sampled_before_learning_starts=64, min_sample_timesteps_per_iteration=256
        )
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
        .build_algo()
    )
    algo.train()
    rng = np.random.default_rng(0)
    for mid, gamma, n in (("p0", 0.99, 1), ("p1", 0.5, 3)):
        buffer = algo.replay_buffers[mid]
        batch = buffer.sample(len(buffer), rng)
        steps = batch["n_steps"].astype(int)
        assert steps.max() == n and steps.min() >= 1
        np.testing.assert_allclose(batch["discounts"], gamma**steps, rtol=1e-6)
    algo.stop()
