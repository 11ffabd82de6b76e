"""Sequence replay (R2D2): the cutter turns EnvRunner fragments into overlapping sequences
that respect episode ends and carry the state the runner had; the buffer stores them in
preallocated rings, samples uniformly or by sequence priority, and round-trips its state."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from scalerl.algorithms.r2d2 import R2D2Config
from scalerl.core.columns import Columns
from scalerl.utils.replay_buffers import (
    PrioritizedSequenceReplayBuffer,
    SequenceCutter,
    SequenceReplayBuffer,
    sequence_priorities,
)

S, B = 4, 3  # max_seq_len (stride, trained steps) and burn-in: sequences of L = 7 steps
L = S + B


class CountingEnv(gym.Env):
    """obs = [env index, a counter that every emitted observation increments], so each
    observation (final and reset ones included) is unique; reward = the counter of the
    observation acted on. Episode k of env i lasts 2 + (3 i + 5 k) % 13 steps and ends by
    termination when k is even, by truncation when odd."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, config=None):
        self.index = (config or {}).get("index", 0)
        self.counter = -1
        self.episode = -1

    def _obs(self):
        self.counter += 1
        return np.array([self.index, self.counter], np.float32)

    def reset(self, *, seed=None, options=None):
        self.episode += 1
        self.t, self.length = 0, 2 + (3 * self.index + 5 * self.episode) % 13
        return self._obs(), {}

    def step(self, action):
        reward = float(self.counter)
        self.t += 1
        end = self.t >= self.length
        term = end and self.episode % 2 == 0
        return self._obs(), reward, term, end and not term, {}


def counting_env(ctx):
    return CountingEnv({"index": ctx.vector_index})


def runner_stream(num_fragments=14, T=5, N=2):
    """The fragments of an R2D2 EnvRunner on CountingEnv and its module."""
    algo = (
        R2D2Config()
        .environment(counting_env)
        .env_runners(num_envs_per_env_runner=N, rollout_fragment_length=T)
        .training(burn_in=B, epsilon=0.5)
        .rl_module(model_config={"max_seq_len": S, "lstm_cell_size": 4, "fcnet_hiddens": [4]})
        .debugging(seed=0)
        .build_algo()
    )
    runner = algo.env_runner_group.local_runner
    fragments = [runner.sample()[0] for _ in range(num_fragments)]
    module = runner.module
    algo.stop()
    return fragments, module


def replayed_states(fragments, module):
    """(env, counter) -> the module's state before acting on that observation, replayed
    step by step from the initial state, reset at episode ends (as the runner does)."""
    obs = np.concatenate([f[Columns.OBS] for f in fragments])
    prev_a = np.concatenate([f[Columns.PREV_ACTIONS] for f in fragments])
    prev_r = np.concatenate([f[Columns.PREV_REWARDS] for f in fragments])
    dones = np.concatenate([f[Columns.TERMINATEDS] | f[Columns.TRUNCATEDS] for f in fragments])
    initial = module.get_initial_state()
    N = obs.shape[1]
    state = {k: v.expand(N, *v.shape).clone() for k, v in initial.items()}
    states = {}
    with torch.no_grad():
        for t in range(len(obs)):
            for n in range(N):
                states[(n, int(obs[t, n, 1]))] = {k: v[n].numpy().copy() for k, v in state.items()}
            out = module.forward_train(
                {
                    Columns.OBS: torch.from_numpy(obs[t])[:, None],
                    Columns.STATE_IN: state,
                    Columns.PREV_ACTIONS: torch.from_numpy(prev_a[t])[:, None],
                    Columns.PREV_REWARDS: torch.from_numpy(prev_r[t])[:, None],
                }
            )
            state = {k: v.clone() for k, v in out[Columns.STATE_OUT].items()}
            for k, v in initial.items():
                state[k][torch.from_numpy(dones[t])] = v
    return states


def test_cutter_sequences_match_the_runner_stream():
    fragments, module = runner_stream()
    cutter = SequenceCutter(S, B)
    out = [s for s in (cutter.add(f) for f in fragments) if s is not None]
    seqs = {k: np.concatenate([o[k] for o in out]) for k in ("obs", "actions", "rewards")}
    for k in ("terminateds", "mask", "burn_in", "prev_action", "prev_reward"):
        seqs[k] = np.concatenate([o[k] for o in out])
    seqs["state_in"] = {k: np.concatenate([o["state_in"][k] for o in out]) for k in ("h", "c")}
    K = len(seqs["mask"])
    assert seqs["obs"].shape == (K, L + 1, 2) and seqs["actions"].shape == (K, L)
    assert seqs["mask"].dtype == bool and seqs["terminateds"].dtype == bool

    # The stream, per (env, counter): action, whether the episode ended there and how,
    # and each episode's first counter.
    action, end, first_of = {}, {}, {}
    for f in fragments:
        T, N = f[Columns.REWARDS].shape
        for t in range(T):
            for n in range(N):
                c = int(f[Columns.OBS][t, n, 1])
                action[(n, c)] = int(f[Columns.ACTIONS][t, n])
                if f[Columns.TERMINATEDS][t, n]:
                    end[(n, c)] = "term"
                elif f[Columns.TRUNCATEDS][t, n]:
                    end[(n, c)] = "trunc"
    for n in range(2):
        counters = sorted(c for (m, c) in action if m == n)
        start = counters[0]
        for c in counters:
            if (n, c - 2) in end or c == counters[0]:  # the final obs c - 1 is not acted on
                start = c
            first_of[(n, c)] = start

    states = replayed_states(fragments, module)
    trained = []
    for i in range(K):
        length = int(seqs["mask"][i].sum())
        assert seqs["mask"][i, :length].all() and not seqs["mask"][i, length:].any()
        n, c0 = int(seqs["obs"][i, 0, 0]), int(seqs["obs"][i, 0, 1])
        counters = seqs["obs"][i, :length, 1].astype(int)
        np.testing.assert_array_equal(counters, c0 + np.arange(length))  # one episode
        ep_step = c0 - first_of[(n, c0)]
        assert ep_step % S == 0  # sequences start every S steps of an episode
        assert seqs["burn_in"][i] == (0 if ep_step == 0 else B)
        # Contents and zero padding after the valid steps.
        np.testing.assert_array_equal(seqs["rewards"][i, :length], counters)
        assert seqs["actions"][i, :length].tolist() == [action[(n, c)] for c in counters]
        assert not seqs["rewards"][i, length:].any() and not seqs["actions"][i, length:].any()
        assert not seqs["obs"][i, length + 1 :].any()
        last = (n, int(counters[-1]))
        if length < L:  # shorter only where the episode ended
            assert last in end
        assert seqs["terminateds"][i].tolist() == [
            j == length - 1 and end.get(last) == "term" for j in range(L)
        ]
        if end.get(last) != "term":  # the next / true final observation to bootstrap from
            assert seqs["obs"][i, length, 1] == counters[-1] + 1
        # a_{-1}, r_{-1} at the first step, and the state the runner had there.
        prev = (0, 0.0) if ep_step == 0 else (action[(n, c0 - 1)], float(c0 - 1))
        assert (seqs["prev_action"][i], seqs["prev_reward"][i]) == prev
        for k in ("h", "c"):
            np.testing.assert_allclose(seqs["state_in"][k][i], states[(n, c0)][k], atol=1e-5)
        trained += [(n, int(c)) for c in counters[seqs["burn_in"][i] :]]

    # Every step of every episode that ended (early enough to be emitted) is trained once.
    assert len(trained) == len(set(trained))
    last_counter = {
        n: max(c for (m, c) in action if m == n) for n in range(2)
    }  # steps after the last emitted end may still be pending
    checked = 0
    for n, c in first_of:
        ends = [e for (m, e) in end if m == n and e >= c]
        if ends and min(ends) < last_counter[n] - L:
            assert (n, c) in set(trained), (n, c)
            checked += 1
    assert checked > 100
    assert any(b == B for b in seqs["burn_in"]) and any(b == 0 for b in seqs["burn_in"])
    assert seqs["terminateds"].any() and (~seqs["mask"]).any()


def sequences(K, L=3, start=0):
    """K distinguishable sequences: obs, rewards and state carry the sequence number."""
    ids = np.arange(start, start + K, dtype=np.float32)
    return {
        "obs": np.repeat(ids[:, None, None], L + 1, axis=1).repeat(2, axis=2),
        "actions": np.zeros((K, L), np.int64),
        "rewards": np.repeat(ids[:, None], L, axis=1),
        "terminateds": np.zeros((K, L), bool),
        "mask": np.ones((K, L), bool),
        "burn_in": np.zeros(K, np.int64),
        "state_in": {"h": np.repeat(ids[:, None], 4, axis=1), "c": np.zeros((K, 4), np.float32)},
        "prev_action": np.zeros(K, np.int64),
        "prev_reward": np.zeros(K, np.float32),
    }


def test_buffer_shapes_ring_overwrite_and_nbytes():
    buf = SequenceReplayBuffer(capacity=3)
    buf.add(sequences(2, start=0))
    buf.add(sequences(3, start=2))  # 5 sequences into 3 slots: 2, 3, 4 survive
    assert len(buf) == 3 and buf.num_added == 5 and buf.sequence_length == 3
    stored = sorted(buf._storage["rewards"][:, 0].tolist())
    assert stored == [2.0, 3.0, 4.0]
    # Slot 0 and 1 were overwritten by sequences 3 and 4, slot 2 holds sequence 2.
    assert buf._storage["state_in"]["h"][:, 0].tolist() == [3.0, 4.0, 2.0]
    per_seq = 4 * 2 * 4 + 3 * 8 + 3 * 4 + 3 + 3 + 8 + 4 * 4 * 2 + 8 + 4
    assert buf.bytes_per_sequence == per_seq and buf.nbytes == 3 * per_seq
    batch = buf.sample(5, np.random.default_rng(0))
    assert batch["obs"].shape == (5, 4, 2) and batch["state_in"]["h"].shape == (5, 4)
    assert np.array_equal(batch["obs"][:, 0, 0], batch["rewards"][:, 0])  # rows stay whole
    with pytest.raises(ValueError, match="L \\+ 1"):
        bad = sequences(1)
        bad["obs"] = bad["obs"][:, :-1]
        buf.add(bad)


def test_sequence_priorities_mix_max_and_mean_over_trained_steps():
    td = np.array([[1.0, -3.0, 2.0, 100.0], [0.5, 0.5, 0.5, 0.5]])
    mask = np.array([[True, True, True, False], [False, True, True, False]])
    expected = [0.9 * 3.0 + 0.1 * 2.0, 0.9 * 0.5 + 0.1 * 0.5]
    np.testing.assert_allclose(sequence_priorities(td, mask, 0.9), expected)
    assert sequence_priorities(td, np.zeros_like(mask), 0.9).tolist() == [0.0, 0.0]

    buf = PrioritizedSequenceReplayBuffer(capacity=4, alpha=0.9, beta=0.6, eta=0.9)
    buf.add(sequences(4, L=4))
    buf.update_priorities(np.array([1, 3]), td, mask)
    p = (np.array(expected) + buf.eps) ** 0.9
    np.testing.assert_allclose(buf.tree.get(np.array([1, 3])), p)
    np.testing.assert_allclose(buf.tree.get(np.array([0, 2])), 1.0)  # max priority at add
    # Sampling follows the priorities; weights are (N P)^-beta / max.
    buf.update_priorities(np.array([0, 2]), np.array([[1e-9] * 4] * 2), np.ones((2, 4), bool))
    batch = buf.sample(2000, np.random.default_rng(0))
    share = np.mean(batch["indices"] == 1)
    np.testing.assert_allclose(share, p[0] / buf.tree.total, atol=0.03)
    assert batch["weights"].max() <= 1.0 and batch["weights"].shape == (2000,)


@pytest.mark.parametrize("cls", [SequenceReplayBuffer, PrioritizedSequenceReplayBuffer])
def test_buffer_state_round_trips_through_safetensors(cls):
    buf = cls(capacity=5)
    buf.add(sequences(3))
    if isinstance(buf, PrioritizedSequenceReplayBuffer):
        buf.update_priorities(np.array([0, 2]), np.array([[2.0, 1.0, 0.0], [0.1, 0.2, 0.3]]))
    arrays, meta = buf.get_state()
    arrays = st_load(st_save(arrays))  # no pickle
    restored = cls(capacity=5)
    restored.set_state(arrays, meta)
    assert len(restored) == 3 and restored.eta == buf.eta
    a, b = (x.sample(4, np.random.default_rng(1)) for x in (buf, restored))
    for k in ("obs", "rewards", "mask", "indices"):
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(a["state_in"]["h"], b["state_in"]["h"])
