"""n-step transitions from a real EnvRunner fragment, checked against the env's own
counter: episodes of 3 steps that alternately truncate and terminate."""

import gymnasium as gym
import numpy as np

from scalerl.algorithms.ppo import PPOConfig
from scalerl.utils.replay_buffers import PrioritizedReplayBuffer, n_step_transitions

LENGTH = 3


class _CountingEnv(gym.Env):
    """obs = [steps taken in the episode, 1 if this episode terminates else 0];
    reward of the k-th step = k. Episodes alternate: truncated, terminated, ..."""

    observation_space = gym.spaces.Box(-1.0, 100.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        self.episode = -1

    def _obs(self):
        return np.array([self.t, self.episode % 2], np.float32)

    def reset(self, *, seed=None, options=None):
        self.t, self.episode = 0, self.episode + 1
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        end = self.t >= LENGTH
        term = end and self.episode % 2 == 1
        return self._obs(), float(self.t), term, end and not term, {}


def test_runner_fragment_gives_exact_n_step_targets():
    T, N, n, gamma = 7, 2, 2, 0.5
    algo = (
        PPOConfig()
        .environment(_CountingEnv)
        .env_runners(num_envs_per_env_runner=N, rollout_fragment_length=T)
        .training(train_batch_size=T * N, minibatch_size=T * N, num_epochs=1)
        .build_algo()
    )
    batch, _ = algo.env_runner_group.local_runner.sample()
    algo.stop()
    assert len(batch["trunc_index"]) > 0 and batch["terminateds"].any()
    out = n_step_transitions(batch, n=n, gamma=gamma)
    for i in range(T * N):
        t = i // N
        o, kind = out["obs"][i]
        steps = int(min(n, LENGTH - o, T - t))  # cut by the episode or the fragment end
        ends = o + steps == LENGTH
        assert out["n_steps"][i] == steps
        expected = sum(gamma**k * (o + k + 1) for k in range(steps))
        assert np.isclose(out["rewards"][i], expected)
        assert np.isclose(out["discounts"][i], gamma**steps)
        assert out["terminateds"][i] == float(ends and kind == 1)
        if not out["terminateds"][i]:  # bootstrapped: the true state n' steps later
            np.testing.assert_array_equal(out["next_obs"][i], [o + steps, kind])
    buf = PrioritizedReplayBuffer(capacity=64)
    buf.add(out)
    assert len(buf) == T * N
