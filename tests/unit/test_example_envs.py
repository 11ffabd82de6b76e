"""The example environments: spaces, seeding, episode lengths, rewards, strictness."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env, data_equivalence

from scalerl.examples.envs import ActionMaskEnv, ImageTargetEnv, SpaceTestEnv, StatelessCartPole


def _valid_action(env, obs, rng):
    if isinstance(env, ActionMaskEnv):
        return int(rng.choice(np.flatnonzero(obs["action_mask"])))
    return env.action_space.sample()


def _rollout(env, seed, steps):
    """Obs, rewards and episode lengths of `steps` random valid steps; checks every obs."""
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs), obs
    observations, rewards, lengths, t = [obs], [], [], 0
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(_valid_action(env, obs, rng))
        assert env.observation_space.contains(obs), obs
        assert isinstance(r, float)
        observations.append(obs)
        rewards.append(r)
        t += 1
        if term or trunc:
            lengths.append(t)
            t = 0
            obs, _ = env.reset()
            assert env.observation_space.contains(obs), obs
            observations.append(obs)
    return observations, rewards, lengths


def _same(a, b):
    return data_equivalence(a, b, exact=True)


NESTED_SPACE = spaces.Dict(
    {
        "img": spaces.Box(0, 255, (8, 8, 3), np.uint8),
        "t": spaces.Tuple((spaces.Discrete(3), spaces.MultiBinary(4))),
        "md": spaces.MultiDiscrete([2, 5]),
        "x": spaces.Box(-1.0, 1.0, (2, 3, 4), np.float32),
    }
)


@pytest.mark.parametrize(
    "make",
    [
        lambda: StatelessCartPole(),
        lambda: ActionMaskEnv({"episode_len": 7}),
        lambda: ImageTargetEnv({"episode_len": 5}),
        lambda: SpaceTestEnv({"episode_len": 6}),
        lambda: SpaceTestEnv(
            {"observation_space": NESTED_SPACE, "action_space": NESTED_SPACE, "episode_len": 4}
        ),
    ],
    ids=["cartpole", "mask", "image", "space", "space-nested"],
)
def test_rollouts_in_space_and_deterministic(make):
    env = make()
    obs_a, rew_a, len_a = _rollout(env, seed=3, steps=300)
    obs_b, rew_b, len_b = _rollout(make(), seed=3, steps=300)
    assert rew_a == rew_b and len_a == len_b
    assert all(_same(a, b) for a, b in zip(obs_a, obs_b))
    obs_c, _, _ = _rollout(make(), seed=4, steps=20)
    assert not all(_same(a, b) for a, b in zip(obs_a, obs_c))
    assert set(rew_a) <= {0.0, 1.0}
    if isinstance(env, StatelessCartPole):
        assert all(1 <= n <= 500 for n in len_a) and len(len_a) > 1
    else:
        assert len_a and set(len_a) == {env.episode_len}
        assert 0 < sum(rew_a) < len(rew_a)  # random play: some reward, not all


class _FixMaskedActions(ActionMaskEnv):
    """check_env samples actions from the whole space; map masked ones to the target."""

    def step(self, action):
        return super().step(action if self.action_mask[action] else self.target)


@pytest.mark.parametrize(
    "make",
    [
        StatelessCartPole,
        _FixMaskedActions,
        ImageTargetEnv,
        lambda: ImageTargetEnv({"size": 20, "channels": 1}),
        SpaceTestEnv,
        lambda: SpaceTestEnv({"observation_space": NESTED_SPACE, "action_space": NESTED_SPACE}),
    ],
)
def test_check_env(make):
    check_env(make(), skip_render_check=True)


def test_stateless_cartpole_matches_cartpole():
    env, ref = StatelessCartPole(), gym.make("CartPole-v1").unwrapped
    assert env.observation_space.shape == (2,) and env.observation_space.dtype == np.float32
    assert np.array_equal(env.observation_space.high, ref.observation_space.high[[0, 2]])
    rng = np.random.default_rng(0)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        full, _ = ref.reset(seed=seed)
        assert obs.dtype == np.float32 and np.array_equal(obs, full[[0, 2]])
        while True:
            a = int(rng.integers(2))
            obs, r, term, trunc, _ = env.step(a)
            full, r_ref, term_ref, _, _ = ref.step(a)
            assert np.array_equal(obs, full[[0, 2]]) and r == r_ref and term == term_ref
            if term:
                break
            assert not trunc


def test_stateless_cartpole_truncates():
    env = StatelessCartPole({"max_episode_steps": 5})
    env.reset(seed=0)
    out = [env.step(i % 2) for i in range(5)]  # alternating: stays up for 5 steps
    assert [o[3] for o in out] == [False] * 4 + [True]
    assert not any(o[2] for o in out)


def test_action_mask_env():
    env = ActionMaskEnv({"num_actions": 5, "episode_len": 10})
    assert env.max_return == 10.0
    obs, _ = env.reset(seed=0)
    total = 0.0
    for _ in range(10):
        mask, target = obs["action_mask"], obs["observations"]
        assert 1 <= mask.sum() <= 4 and target.sum() == 1 and mask[np.argmax(target)] == 1
        obs, r, _, trunc, _ = env.step(np.int64(np.argmax(target)))  # numpy ints accepted
        total += r
    assert trunc and total == env.max_return
    obs, _ = env.reset(seed=1)
    bad = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    with pytest.raises(ValueError, match=f"action {bad} is masked"):
        env.step(bad)
    with pytest.raises(ValueError):
        env.step(5)
    # A random valid policy gets about random_return.
    _, rewards, lengths = _rollout(ActionMaskEnv(), seed=0, steps=4000)
    mean = sum(rewards) / len(lengths)
    assert abs(mean - ActionMaskEnv().random_return) < 0.6, mean


def test_image_env_optimal_and_random():
    env = ImageTargetEnv({"episode_len": 10})
    assert env.observation_space == spaces.Box(0, 255, (16, 16, 3), np.uint8)
    assert env.max_return == 10.0 and env.random_return == 2.5
    returns = []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        ret, done = 0.0, False
        while not done:
            # The target's quadrant is the brightest one.
            q = obs.astype(float).mean(-1).reshape(2, 8, 2, 8).sum((1, 3)).argmax()
            assert q == env.target_action
            obs, r, term, trunc, _ = env.step(env.target_action)
            ret += r
            done = term or trunc
        returns.append(ret)
    assert returns == [env.max_return] * 20
    _, rewards, lengths = _rollout(ImageTargetEnv(), seed=0, steps=4000)
    assert abs(sum(rewards) / len(lengths) - env.random_return) < 0.3
    with pytest.raises(ValueError):
        env.step(4)


def test_space_test_env_checks_actions():
    box = spaces.Box(-1.0, 1.0, (3,), np.float32)
    env = SpaceTestEnv({"observation_space": box, "action_space": box})
    env.reset(seed=0)
    env.step(np.zeros(3, np.float32))
    for bad in [np.zeros(3, np.float64), np.zeros(4, np.float32), np.full(3, 2, np.float32)]:
        with pytest.raises(ValueError, match="not in Box"):
            env.step(bad)
    env = SpaceTestEnv({"observation_space": NESTED_SPACE, "action_space": spaces.Discrete(4)})
    env.reset(seed=0)
    for a in [0, np.int64(3), np.int32(2)]:
        env.step(a)
    with pytest.raises(ValueError):
        env.step(4)


def test_space_test_env_reward_and_shared_config():
    obs_space = spaces.Discrete(2)
    config = {"observation_space": obs_space, "action_space": spaces.Discrete(2)}
    env_a, env_b = SpaceTestEnv(config), SpaceTestEnv(config)
    assert env_a.observation_space is not env_b.observation_space  # own copies
    obs_a, _ = env_a.reset(seed=7)
    env_b.reset(seed=8)
    env_b.step(0)
    obs_c, _ = SpaceTestEnv(config).reset(seed=7)
    assert obs_a == obs_c
    total = 0.0
    for _ in range(10):
        obs_a, r, _, trunc, _ = env_a.step(int(obs_a))  # the matching action always scores
        total += r
    assert total == 10.0 and trunc
