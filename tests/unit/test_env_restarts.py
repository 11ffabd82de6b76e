"""RestartingEnv: an env that raises is recreated; the step is cut as a truncation."""

import gymnasium as gym
import numpy as np
import pytest

from scalerl.env.env_restarts import (
    MAX_RESET_ATTEMPTS,
    RESTARTED,
    RestartingEnv,
    pop_env_restarts,
)
from scalerl.env.registry import EnvContext
from scalerl.utils.errors import EnvError


class Scripted(gym.Env):
    """Raises in step() at the steps in `fail_steps` (counted over all instances)."""

    observation_space = gym.spaces.Box(-10, 10, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)
    created = 0
    steps = 0
    fail_steps: set = set()
    failing_resets = 0

    def __init__(self, config):
        type(self).created += 1
        self.closed = False
        self.t = 0

    def reset(self, *, seed=None, options=None):
        if Scripted.failing_resets > 0:
            Scripted.failing_resets -= 1
            raise OSError("reset failed")
        self.seed = seed
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        Scripted.steps += 1
        if Scripted.steps in Scripted.fail_steps:
            raise RuntimeError("boom")
        self.t += 1
        return np.array([self.t], np.float32), 1.0, False, False, {}

    def close(self):
        self.closed = True


@pytest.fixture
def env():
    Scripted.created, Scripted.steps, Scripted.fail_steps, Scripted.failing_resets = 0, 0, set(), 0
    ctx = EnvContext({}, worker_index=1, vector_index=0)
    return RestartingEnv(Scripted(ctx), Scripted, ctx, "Scripted")


def test_failed_step_is_a_truncation_from_the_last_observation(env):
    Scripted.fail_steps = {3}
    env.reset(seed=5)
    env.step(0)
    old = env.env
    obs, _, _, _, info = env.step(0)
    assert obs[0] == 2.0 and info is not RESTARTED
    obs, reward, term, trunc, info = env.step(0)
    assert info is RESTARTED
    assert (obs[0], reward, term, trunc) == (2.0, 0.0, False, True)  # acted on obs 2
    assert old.closed and env.env is not old and Scripted.created == 2
    # The new env starts a new episode, with a seed derived from the first one.
    obs, _ = env.reset()
    assert obs[0] == 0.0 and env.env.seed is not None and env.env.seed != 5
    assert env.step(0)[0][0] == 1.0
    assert pop_env_restarts([env]) == 1 and pop_env_restarts([env]) == 0


def test_failed_reset_is_retried_on_a_new_env(env):
    Scripted.failing_resets = 2
    obs, _ = env.reset()
    assert obs[0] == 0.0 and env.num_restarts == 2 and Scripted.created == 3


def test_reset_failing_every_time_is_an_env_error(env):
    Scripted.failing_resets = 10**6
    with pytest.raises(EnvError, match=f"reset\\(\\) {MAX_RESET_ATTEMPTS} times") as e:
        env.reset()
    assert isinstance(e.value.__cause__, OSError)


def test_attributes_are_the_envs(env):
    assert env.observation_space == Scripted.observation_space
    assert env.unwrapped is env.env
