"""The autoregressive example: CorrelatedActionsEnv's rewards and bounds, and the module's
second head, distribution and forward passes."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from scalerl.core.rl_module import Columns
from scalerl.examples.envs import CorrelatedActionsEnv
from scalerl.examples.rl_modules import AutoregressiveActionsModule, TwoStepCategorical
from scalerl.utils.errors import ConfigError

N = 4


def make_module(autoregressive=True, seed=0):
    torch.manual_seed(seed)
    env = CorrelatedActionsEnv({"num_actions": N})
    module = AutoregressiveActionsModule(
        env.observation_space, env.action_space, model_config={"autoregressive": autoregressive}
    )
    # Scale up the near-zero initial heads so that their outputs differ visibly.
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(10.0)
    return module


def obs_batch(shifts):
    return {Columns.OBS: torch.eye(N)[torch.as_tensor(shifts)]}


def test_env_rewards():
    env = CorrelatedActionsEnv({"num_actions": N, "episode_len": 4})
    obs, _ = env.reset(seed=0)
    k = int(np.argmax(obs))
    rewards = []
    for a1 in [1, 1, 2, 0]:
        obs, r, term, trunc, _ = env.step((a1, (a1 + k) % N))
        assert np.argmax(obs) == k and not term  # the shift stays for the episode
        rewards.append(r)
    assert rewards == [2.0, 1.0, 2.0, 2.0] and trunc  # the repeated a1 lost its reward
    env.reset(seed=0)
    assert env.step((0, (0 + k + 1) % N))[1] == 1.0  # wrong a2
    with pytest.raises(ValueError):
        env.step((0, N))


def test_env_bounds_match_simulation():
    env = CorrelatedActionsEnv({"num_actions": N, "episode_len": 20})
    rng = np.random.default_rng(0)

    def mean_return(policy, episodes=2000):
        total = 0.0
        for ep in range(episodes):
            obs, _ = env.reset(seed=ep)
            done = False
            while not done:
                obs, r, _, done, _ = env.step(policy(int(np.argmax(obs))))
                total += r
        return total / episodes

    uniform_answered = mean_return(lambda k: (a1 := int(rng.integers(N)), (a1 + k) % N))
    assert abs(uniform_answered - env.max_return) < 0.3
    assert abs(mean_return(lambda k: tuple(rng.integers(N, size=2))) - env.random_return) < 0.3
    # Independent heads at the bound's optimum: p = (m, rest spread), a2 answers a1 = 0.
    m = (N + 1) / (2 * N)
    p = np.array([m] + [(1 - m) / (N - 1)] * (N - 1))
    best_independent = mean_return(lambda k: (int(rng.choice(N, p=p)), k % N))
    assert best_independent <= env.factorized_bound + 0.3
    assert best_independent > env.factorized_bound - 0.5
    assert env.max_return - env.factorized_bound > 10


def test_second_head_depends_on_first_action():
    obs = obs_batch([0, 1, 2, 3])
    for autoregressive in (True, False):
        module = make_module(autoregressive)
        outs = [
            module.forward_train({**obs, Columns.ACTIONS: (torch.full((4,), a1), torch.zeros(4))})
            for a1 in range(N)
        ]
        logits1 = [o[Columns.ACTION_DIST_INPUTS][:, :N] for o in outs]
        logits2 = [o[Columns.ACTION_DIST_INPUTS][:, N:] for o in outs]
        assert all(torch.equal(logits1[0], x) for x in logits1[1:])  # head 1 ignores a1
        same = all(torch.allclose(logits2[0], x) for x in logits2[1:])
        assert same != autoregressive


def test_logp_is_log_p1_plus_log_p2_given_a1():
    module = make_module()
    torch.manual_seed(1)
    obs = obs_batch(torch.randint(0, N, (64,)))
    a1, a2 = torch.randint(0, N, (64,)), torch.randint(0, N, (64,))
    inputs = module.forward_train({**obs, Columns.ACTIONS: (a1, a2)})[Columns.ACTION_DIST_INPUTS]
    dist = module.get_train_action_dist_cls()(inputs)
    features = module._features(obs)
    p1 = torch.distributions.Categorical(logits=module.head1(features))
    p2 = torch.distributions.Categorical(logits=module.a2_logits(features, a1))
    expected = p1.log_prob(a1) + p2.log_prob(a2)
    torch.testing.assert_close(dist.logp((a1, a2)), expected)
    torch.testing.assert_close(dist.entropy(), p1.entropy() + p2.entropy())
    other = module.get_train_action_dist_cls()(inputs.flip(0))
    kl = torch.distributions.kl_divergence
    p1_other = torch.distributions.Categorical(logits=inputs.flip(0)[:, :N])
    p2_other = torch.distributions.Categorical(logits=inputs.flip(0)[:, N:])
    torch.testing.assert_close(dist.kl(other), kl(p1, p1_other) + kl(p2, p2_other))
    with pytest.raises(NotImplementedError, match="module samples"):
        dist.sample()


def test_sampled_dist_inputs_match_training_inputs():
    """What an EnvRunner records (log pi_old) equals forward_train's with the taken a1 (log
    pi), at the same weights: PPO's ratio starts at exactly 1."""
    module = make_module()
    obs = obs_batch(torch.arange(N).repeat(50))
    for phase in (module.forward_exploration, module.forward_inference):
        out = phase(obs)
        a1, a2 = out[Columns.ACTIONS]
        assert a1.dtype == a2.dtype == torch.int64
        assert ((a1 >= 0) & (a1 < N) & (a2 >= 0) & (a2 < N)).all()
        train = module.forward_train({**obs, Columns.ACTIONS: (a1, a2)})
        torch.testing.assert_close(
            train[Columns.ACTION_DIST_INPUTS], out[Columns.ACTION_DIST_INPUTS]
        )
    sampled = module.forward_exploration(obs)[Columns.ACTIONS][0]
    assert len(set(sampled.tolist())) > 1  # exploration samples a1


def test_module_rejects_other_action_spaces():
    with pytest.raises(ConfigError, match="Tuple\\(Discrete, Discrete\\)"):
        AutoregressiveActionsModule(
            gym.spaces.Box(0, 1, (N,)), gym.spaces.Discrete(N), model_config={}
        )
    assert TwoStepCategorical.for_sizes(3) is TwoStepCategorical.for_sizes(3)
    assert TwoStepCategorical.for_sizes(3).n1 == 3
