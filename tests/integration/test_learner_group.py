"""Data-parallel Learners as Ray actors (`num_learners >= 1`), and the batch split they use."""

import numpy as np
import pytest
import ray

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.sac import SACConfig
from scalerl.core.learner_group import steps_per_epoch
from scalerl.core.rl_module import RLModule
from scalerl.examples.envs import MultiAgentCartPole
from scalerl.utils.batch import concat_fragments, split_fragment
from scalerl.utils.errors import ConfigError


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def two_learner_config():
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(train_batch_size=512, minibatch_size=128, num_epochs=2)
        .learners(num_learners=2)
        .debugging(seed=0)
    )


def learner_weights(algo):
    return [
        w["default_policy"]
        for w in ray.get([w.get_weights.remote(None) for w in algo.learner_group.remote_learners])
    ]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def sorted_truncs(fragment):
    order = np.lexsort((fragment["trunc_index"][:, 0], fragment["trunc_index"][:, 1]))
    return fragment["trunc_index"][order], fragment["trunc_obs"][order]


def test_split_fragment_reindexes_truncations_and_concats_back():
    T, N = 6, 5
    rng = np.random.default_rng(0)
    trunc_index = np.array([[1, 0], [4, 3], [2, 4], [5, 2], [0, 4]])
    fragment = {
        "obs": rng.normal(size=(T, N, 3)).astype(np.float32),
        "rewards": rng.normal(size=(T, N)).astype(np.float32),
        "bootstrap_obs": rng.normal(size=(N, 3)).astype(np.float32),
        "trunc_index": trunc_index,
        "trunc_obs": rng.normal(size=(len(trunc_index), 3)).astype(np.float32),
    }
    shards = split_fragment(fragment, 2)
    # Envs 0-2 and 3-4; env 3's truncation becomes column 0 of shard 1.
    assert [s["obs"].shape[1] for s in shards] == [3, 2]
    assert [s["bootstrap_obs"].shape[0] for s in shards] == [3, 2]
    np.testing.assert_array_equal(shards[0]["trunc_index"], [[1, 0], [5, 2]])
    np.testing.assert_array_equal(shards[1]["trunc_index"], [[4, 0], [2, 1], [0, 1]])
    np.testing.assert_array_equal(shards[1]["trunc_obs"], fragment["trunc_obs"][[1, 2, 4]])
    for n in (1, 2, 3, 5):
        joined = concat_fragments(split_fragment(fragment, n))
        for key in ("obs", "rewards", "bootstrap_obs"):
            np.testing.assert_array_equal(joined[key], fragment[key])
        for got, want in zip(sorted_truncs(joined), sorted_truncs(fragment)):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ConfigError, match="at least `num_learners` envs"):
        split_fragment(fragment, 6)
    # Equal shards: each learner's own minibatch count; unequal: one shared count.
    assert steps_per_epoch([256, 256], 64) is None
    assert steps_per_epoch([300, 200], 64) == 4


def test_config_with_fewer_envs_than_learners_fails_early():
    config = two_learner_config().env_runners(num_envs_per_env_runner=1)
    with pytest.raises(ConfigError, match="num_envs_per_env_runner=2"):
        config.build_algo()


def test_more_learners_than_the_cluster_holds_fail_at_once(ray_local):
    with pytest.raises(ConfigError, match="need 3 CPUs, but the Ray cluster has 2"):
        two_learner_config().learners(num_learners=3).build_algo()
    with pytest.raises(ConfigError, match="need 2 GPUs"):
        two_learner_config().learners(num_gpus_per_learner=1).build_algo()


def test_two_learners_train_in_lockstep(ray_local, assert_actor_dead):
    algo = two_learner_config().build_algo()
    group = algo.learner_group
    assert len(group.remote_learners) == 2
    initial = learner_weights(algo)
    assert_same_weights(initial[0], initial[1])  # rank 0's initial weights broadcast

    algo.train()
    result = algo.train()
    metrics = result["learners"]["default_policy"]
    for key in ("total_loss", "policy_loss", "vf_loss", "entropy", "mean_kl_loss"):
        assert np.isfinite(metrics[key]), key
    assert metrics["num_module_steps_trained"] == 512 * 2  # summed over the learners

    # The gradient all-reduce keeps both learners identical; the driver copy, the
    # EnvRunner and get_weights() all hold those weights.
    w0, w1 = learner_weights(algo)
    assert_same_weights(w0, w1)
    assert any(not np.array_equal(w0[k], initial[0][k]) for k in w0)  # it trained
    assert_same_weights(group.get_weights()["default_policy"], w0)
    runner = algo.env_runner_group.local_runner.module.state_dict()
    assert_same_weights({k: v.numpy() for k, v in runner.items()}, w0)
    assert algo.compute_single_action(np.zeros(4, dtype=np.float32)) in (0, 1)

    actors = list(group.remote_learners)
    group.stop()
    group.stop()  # idempotent
    for actor in actors:
        assert_actor_dead(actor)
    algo.stop()


def test_two_learner_checkpoint_round_trip(ray_local, tmp_path):
    algo = two_learner_config().build_algo()
    algo.train()
    path = algo.save(tmp_path / "ckpt")
    saved = algo.learner_group.get_weights()["default_policy"]
    # Two learners take both CPUs of this Ray instance: free them before the next build.
    algo.learner_group.stop()
    algo.stop()

    # Written in the single-learner layout: the module loads on its own.
    module = RLModule.from_checkpoint(path)
    assert_same_weights({k: v.numpy() for k, v in module.state_dict().items()}, saved)

    algo2 = Algorithm.from_checkpoint(path)
    assert algo2.iteration == 1
    w0, w1 = learner_weights(algo2)
    assert_same_weights(w0, saved)
    assert_same_weights(w1, saved)
    states = ray.get(
        [w.get_state.remote("default_policy") for w in algo2.learner_group.remote_learners]
    )
    assert states[0]["learner_state"]["optimizer"] == states[1]["learner_state"]["optimizer"]
    assert states[0]["learner_state"]["optimizer"]["t"] == 2 * 4  # epochs x minibatches
    algo2.train()
    assert_same_weights(*learner_weights(algo2))
    algo2.learner_group.stop()
    algo2.stop()


def rank_weights(algo):
    """Each learner actor's weights, keyed by module id."""
    return ray.get([w.get_weights.remote(None) for w in algo.learner_group.remote_learners])


def assert_ranks_agree_and_trained(algo, before):
    ranks = rank_weights(algo)
    driver = algo.learner_group.get_weights()
    for mid in driver:
        assert_same_weights(ranks[0][mid], ranks[1][mid])  # the all-reduce kept them equal
        assert_same_weights(driver[mid], ranks[0][mid])  # the driver copy follows rank 0
        assert any(not np.array_equal(driver[mid][k], before[mid][k]) for k in driver[mid]), mid


def two_learner_replay(config, env):
    """A small off-policy run on two learners: batches of 32, learning after 64 steps."""
    return (
        config.environment(env)
        .training(
            train_batch_size=32,
            num_steps_sampled_before_learning_starts=64,
            min_sample_timesteps_per_iteration=100,
        )
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .learners(num_learners=2)
        .debugging(seed=0)
        .build_algo()
    )


def test_two_learners_train_dqn_with_priorities_from_both(ray_local):
    """A replayed batch of 32 splits 16/16; the TD errors of both halves come back (in
    order) for the prioritized buffer, and the weights stay equal on both learners."""
    algo = two_learner_replay(DQNConfig(), "CartPole-v1")
    priorities = []
    update_priorities = algo.replay_buffer.update_priorities
    algo.replay_buffer.update_priorities = lambda idx, td: (
        priorities.append((len(idx), len(td))),
        update_priorities(idx, td),
    )
    before = algo.learner_group.get_weights()
    stats = algo.train()["learners"]["default_policy"]
    assert priorities and all(p == (32, 32) for p in priorities)
    assert stats["num_module_steps_trained"] == 32 * len(priorities)
    assert_ranks_agree_and_trained(algo, before)
    algo.learner_group.stop()
    algo.stop()


def test_two_learners_train_sac(ray_local):
    algo = two_learner_replay(SACConfig(), "Pendulum-v1")
    before = algo.learner_group.get_weights()
    stats = algo.train()["learners"]["default_policy"]
    assert np.isfinite(stats["qf_loss"]) and np.isfinite(stats["log_alpha_value"])
    assert_ranks_agree_and_trained(algo, before)
    # The EnvRunner acts with the policy part of the trained weights.
    runner = algo.env_runner_group.local_runner.module.get_policy_state()
    policy = algo.learner_group.get_weights(inference_only=True)["default_policy"]
    assert runner.keys() == policy.keys()
    assert_same_weights(runner, policy)
    algo.learner_group.stop()
    algo.stop()


def test_two_learners_train_two_policies(ray_local, tmp_path):
    """Multi-agent PPO: each module's [M, 1] column splits at trajectory ends; both
    policies train on both learners and a checkpoint restores them."""
    algo = (
        PPOConfig()
        .environment(MultiAgentCartPole, env_config={"num_agents": 2})
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}")
        .training(train_batch_size=400, minibatch_size=50, num_epochs=2)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .learners(num_learners=2)
        .debugging(seed=0)
        .build_algo()
    )
    before = algo.learner_group.get_weights()
    learners = algo.train()["learners"]
    assert set(learners) == {"p0", "p1"}
    assert_ranks_agree_and_trained(algo, before)
    path = algo.save(tmp_path / "ckpt")
    saved = algo.learner_group.get_weights()
    algo.learner_group.stop()
    algo.stop()
    restored = Algorithm.from_checkpoint(path, {"num_learners": 0})
    for mid in ("p0", "p1"):
        assert_same_weights(restored.learner_group.get_weights()[mid], saved[mid])
    restored.stop()


def test_two_learners_update_like_one_with_target_networks(ray_local):
    """Data-parallel DQN matches one learner update for update on the same batches: the
    target network (state derived from the weights) must not drift on rank 1, and the
    TD errors of the two halves come back in batch order."""

    def build(num_learners):
        return (
            DQNConfig()
            .environment("CartPole-v1")
            .training(
                num_steps_sampled_before_learning_starts=10**6,  # sampling only
                min_sample_timesteps_per_iteration=64,
                target_network_update_freq=2,
            )
            .rl_module(model_config={"fcnet_hiddens": [16]})
            .learners(num_learners=num_learners)
            .build_algo()  # no seed: rank 1 must still take rank 0's whole state
        )

    one, two = build(0), build(2)
    two.learner_group.set_weights(one.learner_group.get_weights())
    one.learner_group.foreach_learner(lambda learner: learner.update_target())
    two.learner_group.foreach_learner(lambda learner: learner.update_target())
    one.train()
    rng = np.random.default_rng(0)
    for t in range(6):  # the target network updates every 2 steps
        batch = one.replay_buffer.sample(32, rng)
        a = one.learner_group.update({"default_policy": dict(batch)}, t)["default_policy"]
        b = two.learner_group.update({"default_policy": dict(batch)}, t)["default_policy"]
        np.testing.assert_allclose(a["td_error"], b["td_error"], atol=1e-5)
        np.testing.assert_allclose(a["qf_loss"], b["qf_loss"], rtol=1e-5)
    w1, w2 = one.get_weights()["default_policy"], two.get_weights()["default_policy"]
    for name in w1:
        np.testing.assert_allclose(w1[name], w2[name], atol=1e-6, err_msg=name)
    two.learner_group.stop()
    two.stop()
    one.stop()
