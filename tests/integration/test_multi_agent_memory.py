"""Multi-agent runs with recurrent modules (per-agent state in the EnvRunner, sequences
that never cross a trajectory in the [M, 1] column) and with observation filters (one
MeanStdFilter per module: sampling, merging, checkpoints, acting)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import ray
import torch
from multi_agent_test_envs import IndependentCartPoles, MixedSpaces, PayTheOther

from scalerl.algorithms.algorithm import OBS_FILTER_FILE, Algorithm
from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.sac import SACConfig
from scalerl.connectors.env_to_module import MeanStdFilter
from scalerl.core.columns import Columns
from scalerl.env.multi_agent_env import make_multi_agent
from scalerl.examples.envs import MultiAgentCartPole, StatelessCartPole
from scalerl.utils.batch import split_column
from scalerl.utils.errors import ConfigError
from scalerl.utils.sequences import SequenceLayout, recurrent_values, sequence_batch

StatelessCartPoles = make_multi_agent(lambda cfg: StatelessCartPole(cfg))

LSTM = {
    "use_lstm": True,
    "lstm_cell_size": 8,
    "max_seq_len": 4,
    "fcnet_hiddens": [8],
    "lstm_use_prev_action": True,
    "lstm_use_prev_reward": True,
}
ATTENTION = {
    "use_attention": True,
    "attention_dim": 8,
    "attention_head_dim": 4,
    "attention_num_heads": 2,
    "attention_position_wise_mlp_dim": 8,
    "attention_memory_inference": 5,
    "attention_memory_training": 5,
    "max_seq_len": 4,
    "fcnet_hiddens": [8],
    "lstm_use_prev_reward": True,
}


def by_agent_id(agent_id, episode, **kwargs):
    return f"p{agent_id}"


def recurrent_config(model_config=LSTM, env=StatelessCartPoles, **env_config) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config={"num_agents": 2, **env_config})
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=by_agent_id)
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=30)
        .training(train_batch_size=120, minibatch_size=32, num_epochs=2)
        .rl_module(model_config=model_config)
        .evaluation(evaluation_duration=2)
        .debugging(seed=0)
    )


def trajectory_starts(fragment: dict) -> np.ndarray:
    """Rows where a trajectory starts: row 0 and every row after a terminated/cut one."""
    done = (fragment[Columns.TERMINATEDS] | fragment[Columns.TRUNCATEDS])[:, 0]
    return np.flatnonzero(np.concatenate([[True], done[:-1]]))


def replay(module, fragment: dict) -> tuple[np.ndarray, np.ndarray]:
    """The learner's view: the column cut into sequences at `seq_index`, run from the
    recorded states; returns (dist inputs [M, D], values [M])."""
    M = len(fragment[Columns.REWARDS])
    layout = SequenceLayout.from_starts(fragment[Columns.SEQ_INDEX], M)
    batch = sequence_batch(fragment, layout, [Columns.OBS])
    with torch.no_grad():
        out = module.forward_train(_tensors(batch))
    inputs = out[Columns.ACTION_DIST_INPUTS].numpy()
    values = out[Columns.VF_PREDS].numpy()
    return layout.scatter(inputs, M, 1)[:, 0], layout.scatter(values, M, 1)[:, 0]


def _tensors(x):
    if isinstance(x, dict):
        return {k: _tensors(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_tensors(v) for v in x)
    return torch.from_numpy(np.ascontiguousarray(x))


def check_column(module, fragment: dict, max_seq_len: int, fresh: bool) -> None:
    """Sequences start at every trajectory start and every `max_seq_len` rows after it,
    never cross a trajectory, and replay the runner's step-by-step forward exactly."""
    M = len(fragment[Columns.REWARDS])
    starts = trajectory_starts(fragment)
    seq = fragment[Columns.SEQ_INDEX]
    assert (seq[:, 1] == 0).all()
    ends = np.append(starts[1:], M)
    expected = np.concatenate([np.arange(s, e, max_seq_len) for s, e in zip(starts, ends)])
    np.testing.assert_array_equal(seq[:, 0], expected)
    layout = SequenceLayout.from_starts(seq, M)
    assert layout.mask.sum() == M and layout.mask.shape[1] <= max_seq_len
    # Within a trajectory a_{t-1} and r_{t-1} are the row before's action and reward.
    inner = np.setdiff1d(np.arange(1, M), starts)
    np.testing.assert_array_equal(
        fragment[Columns.PREV_ACTIONS][inner, 0], fragment[Columns.ACTIONS][inner - 1, 0]
    )
    np.testing.assert_array_equal(
        fragment[Columns.PREV_REWARDS][inner, 0], fragment[Columns.REWARDS][inner - 1, 0]
    )
    initial = {k: v.numpy() for k, v in module.get_initial_state().items()}
    at_start = np.isin(seq[:, 0], starts)
    for k, v in fragment[Columns.STATE_IN].items():
        assert v.shape == (len(seq), *initial[k].shape)
        is_initial = (v[at_start] == initial[k]).reshape(at_start.sum(), -1).all(axis=1)
        if fresh:  # every trajectory of a fresh runner's first fragment starts an episode
            assert is_initial.all()
        else:  # episodes that go on from the last fragment carry their state in
            assert not is_initial.all()
        # Sequences inside a trajectory start from the state the agent reached.
        assert (~at_start).sum() == 0 or not (v[~at_start] == initial[k]).all()
    if fresh:
        assert (fragment[Columns.PREV_REWARDS][starts] == 0).all()
        assert (fragment[Columns.PREV_ACTIONS][starts] == 0).all()
    inputs, values = replay(module, fragment)
    np.testing.assert_allclose(inputs, fragment[Columns.ACTION_DIST_INPUTS][:, 0], atol=1e-5)

    def compute_values(batch):
        with torch.no_grad():
            return module.compute_values(_tensors(batch)).numpy()

    v, v_boot, v_trunc = recurrent_values(compute_values, fragment)
    np.testing.assert_allclose(v[:, 0], values, atol=1e-5)
    K = len(fragment[Columns.TRUNC_INDEX])
    assert v_boot.shape == (1,) and v_trunc.shape == (K,)
    for k, s in fragment[Columns.TRUNC_STATE].items():
        assert s.shape == (K, *initial[k].shape)


@pytest.mark.parametrize("model_config", [LSTM, ATTENTION], ids=["lstm", "attention"])
def test_recurrent_fragment_column_layout_and_replay(model_config):
    """Two agents per env (2 envs, 2 policies), episodes of 7 steps: many trajectories
    per column, cut at episode ends, at fragment ends and where agents fall."""
    algo = recurrent_config(model_config, max_episode_steps=7).build_algo()
    runner = algo.env_runner_group.local_runner
    for fresh in (True, False):
        batch, metrics = runner.sample()
        assert sorted(batch) == ["p0", "p1"]
        for mid, fragment in batch.items():
            assert len(fragment[Columns.TRUNC_INDEX]) > 0
            check_column(algo.get_module(mid), fragment, model_config["max_seq_len"], fresh)
    # State is kept for exactly the agents that acted in an episode that goes on: one
    # that fell, or whose episode ended, starts its next episode fresh.
    sizes = set()
    for _ in range(10):
        runner.sample(1)
        live = {(i, a) for i, obs in enumerate(runner.obs) for a in obs if runner.ep_len[i] > 0}
        assert set(runner.memory.agents) == live
        sizes.add(len(live))
    assert len(sizes) > 1  # agents did end and restart in these steps
    algo.stop()


def test_recurrent_column_splits_over_learners_at_trajectory_ends():
    """`split_column` (data-parallel learners) cuts after trajectory ends only, so every
    part starts a sequence and carries its sequences' states: each part replays alone."""
    algo = recurrent_config(max_episode_steps=7).build_algo()
    batch, _ = algo.env_runner_group.local_runner.sample()
    fragment = batch["p0"]
    parts = split_column(fragment, 3)
    assert parts is not None and len(parts) == 3
    assert sum(len(p[Columns.SEQ_INDEX]) for p in parts) == len(fragment[Columns.SEQ_INDEX])
    for part in parts:
        check_column(algo.get_module("p0"), part, LSTM["max_seq_len"], fresh=True)
    algo.stop()


def test_turn_based_recurrent_agents_see_their_own_rewards():
    """PayTheOther: each move pays the other player, so an agent's r_{t-1} is what it
    received while the other moved; one shared LSTM module, batched over both players."""
    algo = (
        recurrent_config(env=PayTheOther)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda aid, ep, **kw: "shared")
        .build_algo()
    )
    batch, _ = algo.env_runner_group.local_runner.sample(40)
    fragment = batch["shared"]
    check_column(algo.get_module("shared"), fragment, LSTM["max_seq_len"], fresh=True)
    inner = np.setdiff1d(np.arange(len(fragment[Columns.REWARDS])), trajectory_starts(fragment))
    # Every reward includes the 1.0 the other player's move paid (the last move's too).
    assert (fragment[Columns.PREV_REWARDS][inner] >= 1.0).all()
    algo.stop()


def test_two_policy_recurrent_ppo_trains_evaluates_restores_and_acts(tmp_path):
    algo = recurrent_config(max_episode_steps=20).build_algo()
    before = {mid: algo.get_weights()[mid] for mid in ("p0", "p1")}
    for _ in range(3):
        result = algo.train()
    assert sorted(result["learners"]) == ["p0", "p1"]
    for mid in ("p0", "p1"):
        assert np.isfinite(result["learners"][mid]["total_loss"])
        after = algo.get_weights()[mid]
        assert any(not np.array_equal(before[mid][k], after[k]) for k in after)
    assert algo.evaluate()["env_runners"]["num_episodes"] == 2

    # compute_single_action with a state and a policy id: the module's own state path.
    module = algo.get_module("p1")
    state = {k: v.numpy() for k, v in module.get_initial_state().items()}
    obs = np.array([0.05, -0.1], np.float32)
    action, state_out, extra = algo.compute_single_action(
        obs, state, prev_action=1, prev_reward=1.0, policy_id="p1"
    )
    assert action in (0, 1) and extra == {}
    assert state_out.keys() == state.keys()
    assert all(state_out[k].shape == state[k].shape for k in state)
    assert any(not np.allclose(state_out[k], state[k]) for k in state)
    batch = {
        Columns.OBS: torch.from_numpy(obs)[None, None],
        Columns.STATE_IN: {k: torch.from_numpy(v)[None] for k, v in state.items()},
        Columns.PREV_ACTIONS: torch.tensor([[1]]),
        Columns.PREV_REWARDS: torch.tensor([[1.0]]),
    }
    with torch.no_grad():
        out = module.forward_inference(batch)
    assert action == int(out[Columns.ACTION_DIST_INPUTS][0, 0].argmax())
    np.testing.assert_allclose(state_out["h"], out[Columns.STATE_OUT]["h"][0].numpy())
    # The next step goes on from `state_out`, which changes the result.
    _, state_2, _ = algo.compute_single_action(obs, state_out, policy_id="p1")
    assert not np.allclose(state_2["h"], state_out["h"])

    path = algo.save(tmp_path / "ckpt").checkpoint.path
    restored = recurrent_config(max_episode_steps=20).build_algo()
    restored.restore(path)
    again = restored.compute_single_action(
        obs, state, prev_action=1, prev_reward=1.0, policy_id="p1"
    )
    assert again[0] == action
    np.testing.assert_allclose(again[1]["h"], state_out["h"], atol=1e-6)
    assert sorted(restored.train()["learners"]) == ["p0", "p1"]
    restored.stop()
    algo.stop()


def test_one_recurrent_and_one_memoryless_policy_train_together():
    """`algorithm_config_overrides_per_module` gives p0 an LSTM; p1 keeps its MLP."""
    algo = (
        recurrent_config(model_config={"fcnet_hiddens": [8]}, max_episode_steps=20)
        .multi_agent(algorithm_config_overrides_per_module={"p0": {"model_config": LSTM}})
        .build_algo()
    )
    assert algo.get_module("p0").is_stateful() and not algo.get_module("p1").is_stateful()
    batch, _ = algo.env_runner_group.local_runner.sample()
    assert Columns.SEQ_INDEX in batch["p0"] and Columns.SEQ_INDEX not in batch["p1"]
    check_column(algo.get_module("p0"), batch["p0"], LSTM["max_seq_len"], fresh=True)
    assert sorted(algo.train()["learners"]) == ["p0", "p1"]
    assert algo.compute_single_action(np.zeros(2, np.float32), policy_id="p1") in (0, 1)
    algo.stop()


@pytest.mark.parametrize("config_class", [DQNConfig, SACConfig])
def test_memoryless_multi_agent_algorithms_name_the_setting(config_class):
    base = config_class().environment(IndependentCartPoles)
    name = config_class.__name__.removesuffix("Config")
    with pytest.raises(ConfigError, match=rf"`use_lstm=True` for policy `p0`.*{name}'s multi"):
        base.copy().multi_agent(policies={"p0", "p1"}, policy_mapping_fn=by_agent_id).rl_module(
            model_config={"use_lstm": True}
        ).validate()
    # Per-module overrides too, naming that module.
    with pytest.raises(ConfigError, match="`use_attention=True` for policy `p1`"):
        base.copy().multi_agent(
            policies={"p0", "p1"},
            policy_mapping_fn=by_agent_id,
            algorithm_config_overrides_per_module={"p1": {"model_config": {"use_attention": True}}},
        ).validate()


# -- observation filters ---------------------------------------------------------------
class ShiftedCartPoles(IndependentCartPoles):
    """Agent 1 observes its CartPole's state x 10 + 50: its own statistics, far from agent
    0's, so one filter for both would normalize neither."""

    def __init__(self, config=None):
        super().__init__(config)
        low, high = self.observation_spaces[1].low, self.observation_spaces[1].high
        self.observation_spaces = {
            0: self.observation_spaces[0],
            1: gym.spaces.Box(low * 10 + 50, high * 10 + 50, dtype=np.float32),
        }

    def _shift(self, obs):
        if 1 in obs:
            obs[1] = (obs[1] * 10 + 50).astype(np.float32)
        return obs

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return self._shift(obs), info

    def step(self, actions):
        obs, *rest = super().step(actions)
        return (self._shift(obs), *rest)


def filter_config(env=ShiftedCartPoles, **env_runners) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env)
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=by_agent_id)
        .env_runners(num_envs_per_env_runner=2, **env_runners)
        .training(train_batch_size=200, minibatch_size=50, num_epochs=2)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .evaluation(evaluation_duration=2)
        .debugging(seed=0)
    )


@pytest.fixture(scope="module")
def filtered():
    """Two iterations with the filter given RLlib's way."""
    algo = filter_config(env_to_module_connector=lambda env: MeanStdFilter(clip_by_value=5.0))
    algo = algo.build_algo()
    results = [algo.train() for _ in range(2)]
    yield algo, results
    algo.stop()


def test_one_filter_per_module_updated_from_its_agents(filtered):
    algo, _ = filtered
    assert algo.config.observation_filter == {
        "type": "MeanStdFilter",
        **MeanStdFilter(clip_by_value=5.0).settings,
    }
    runner = algo.env_runner_group.local_runner
    central = algo.obs_filter
    assert runner.obs_filter is central and sorted(central.filters) == ["p0", "p1"]
    p0, p1 = central["p0"].running[0], central["p1"].running[0]
    assert abs(p0.mean[0]) < 1 and abs(p1.mean[0] - 50) < 5 and p1.std[0] > 3 * p0.std[0]

    def open_steps(mid):
        return sum(
            runner.agent_module[i][aid] == mid for i, p in enumerate(runner.pending) for aid in p
        )

    # Every observation an agent acted on joined its module's statistics, once: the rows
    # emitted, less the steps opened before this sample, plus those still open.
    before = {mid: (central[mid].running[0].n, open_steps(mid)) for mid in ("p0", "p1")}
    batch, metrics = runner.sample(40)
    for mid, (n, was_open) in before.items():
        acted = metrics["num_agent_steps"][mid] - was_open + open_steps(mid)
        assert central[mid].running[0].n - n == acted
        fragment = batch[mid]
        obs = fragment[Columns.OBS][:, 0]
        # The module saw normalized observations (agent 1's raw ones are near 50).
        assert np.abs(obs.mean(axis=0)).max() < 1.5 and np.abs(obs).max() <= 5.0
        assert np.abs(fragment[Columns.TRUNC_OBS]).max() <= 5.0
    # Evaluation filters with the frozen central statistics.
    before = central.get_state()
    assert algo.evaluate()["env_runners"]["num_episodes"] == 2
    assert central.get_state() == before
    assert algo.eval_env_runner_group.obs_filter.get_state() == before


def test_compute_single_action_uses_the_modules_filter(filtered):
    algo, _ = filtered
    obs = np.array([0.1, 0.5, 50.2, -0.3], np.float32)
    for mid in ("p0", "p1"):
        stat = algo.obs_filter[mid].running[0]
        manual = np.clip((obs - stat.mean) / (stat.std + 1e-8), -5.0, 5.0).astype(np.float32)
        module = algo.get_module(mid)
        with torch.no_grad():
            logits = module.forward_inference({Columns.OBS: torch.from_numpy(manual[None])})[
                Columns.ACTION_DIST_INPUTS
            ]
        assert algo.compute_single_action(obs, policy_id=mid) == int(logits[0].argmax())
    # The two modules' filters differ, so one observation becomes two module inputs.
    a, b = (algo.obs_filter[m](obs[None], update=False) for m in ("p0", "p1"))
    assert not np.allclose(a, b)


def test_checkpoint_round_trip_of_per_module_filters(filtered, tmp_path):
    algo, _ = filtered
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    stored = json.loads((tmp_path / "ckpt" / OBS_FILTER_FILE).read_text())
    assert sorted(stored["modules"]) == ["p0", "p1"]
    restored = Algorithm.from_checkpoint(path)
    assert restored.obs_filter.get_state() == algo.obs_filter.get_state()
    obs = np.array([0.0, 0.2, 49.0, 0.1], np.float32)
    for mid in ("p0", "p1"):
        assert restored.compute_single_action(obs, policy_id=mid) == algo.compute_single_action(
            obs, policy_id=mid
        )
    restored.stop()
    # A checkpoint's filter must fit the run's modules.
    other = (
        filter_config(observation_filter="MeanStdFilter")
        .multi_agent(policies={"p0", "q"}, policy_mapping_fn=lambda a, e, **k: ["p0", "q"][a])
        .build_algo()
    )
    state = algo.obs_filter.get_state()
    state["modules"]["q"] = state["modules"].pop("p1")
    other.obs_filter.set_state(state)  # fits: module ids match
    state["modules"].pop("q")
    with pytest.raises(ValueError, match=r"modules \['p0'\].*\['p0', 'q'\]"):
        other.obs_filter.set_state(state)
    other.stop()


def test_filter_passes_non_box_observations_and_follows_module_changes():
    """MixedSpaces: the walker's Box observations are filtered, the pusher's Discrete ones
    pass through; add_module / remove_module add and drop a module's filter."""
    algo = (
        PPOConfig()
        .environment(MixedSpaces)
        .multi_agent(policies={"walker", "pusher"}, policy_mapping_fn=lambda aid, ep, **kw: aid)
        .env_runners(observation_filter="MeanStdFilter")
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .debugging(seed=0)
        .build_algo()
    )
    algo.train()
    batch, _ = algo.env_runner_group.local_runner.sample(16)
    assert set(np.unique(batch["pusher"][Columns.OBS])) <= {2, 3, 4}
    walker = batch["walker"][Columns.OBS][:, 0]
    assert walker.min() < -0.5  # normalized: the raw observations t / 10 are >= 0
    assert algo.obs_filter["pusher"].paths == [] and algo.obs_filter["walker"].running[0].n > 0
    algo.add_module(
        "walker2",
        new_agent_to_module_mapping_fn=lambda aid, ep, **kw: "walker2" if aid == "walker" else aid,
    )
    assert algo.obs_filter["walker2"].running[0].n == 0
    algo.train()
    assert algo.obs_filter["walker2"].running[0].n > 0
    algo.remove_module(
        "walker",
        new_agent_to_module_mapping_fn=lambda aid, ep, **kw: "walker2" if aid == "walker" else aid,
    )
    assert sorted(algo.obs_filter.filters) == ["pusher", "walker2"]
    algo.train()
    algo.stop()


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_recurrent_filtered_run_on_ray_runners_merges_and_syncs_filters(ray_local):
    algo = (
        # The env and a lambda: Ray pickles those by value (this test module is not
        # importable in the runners).
        filter_config(
            MultiAgentCartPole,
            observation_filter="MeanStdFilter",
            num_env_runners=2,
            num_cpus_per_env_runner=0.5,
        )
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, ep, **kw: f"p{aid}")
        .rl_module(model_config=LSTM)  # recurrent modules on Ray runners, filtered
        .build_algo()
    )
    results = [algo.train() for _ in range(2)]
    assert all(np.isfinite(r["learners"][m]["total_loss"]) for r in results for m in ("p0", "p1"))
    steps = [r["env_runners"]["num_env_steps_sampled"] for r in results]
    central = algo.obs_filter
    # The driver's copy holds both runners' statistics: one observation per agent and env
    # step while the agent stands (at least one agent stands until the episode ends).
    n0, n1 = central["p0"].running[0].n, central["p1"].running[0].n
    assert n0 <= sum(steps) and n1 <= sum(steps) and n0 + n1 >= sum(steps) > 0
    assert central["p0"].get_state() != central["p1"].get_state()
    # The runners filter with the merged statistics the driver sent back.
    runners = algo.env_runner_group.remote_runners
    states = ray.get(
        [r.__ray_call__.remote(lambda self: self.obs_filter.get_state()) for r in runners]
    )
    assert len(states) == 2 and all(state == central.get_state() for state in states)
    algo.stop()


def test_two_learners_train_two_recurrent_policies(ray_local):
    """`num_learners=2`: each recurrent module's column is split at trajectory ends and
    both learners train on their shares in lockstep."""
    algo = (
        recurrent_config(max_episode_steps=20)
        .learners(num_learners=2)
        # A lambda: Ray pickles it by value (this test module is not importable there).
        .multi_agent(policy_mapping_fn=lambda aid, ep, **kw: f"p{aid}")
        .build_algo()
    )
    before = algo.get_weights()
    learners = algo.train()["learners"]
    assert set(learners) == {"p0", "p1"}
    after = algo.get_weights()
    for mid in ("p0", "p1"):
        assert np.isfinite(learners[mid]["total_loss"])
        assert any(not np.array_equal(before[mid][k], after[mid][k]) for k in after[mid])
    algo.stop()
