"""Multi-agent PPO must learn (issue 5): thresholds and budgets stated per test.

MultiAgentCartPole with two policies is the `multi-agent-cartpole-ppo` preset (its test is
in test_presets.py).

MultiAgentArena baselines are measured in the test itself: 50 seeded episodes in which
the agent in question acts uniformly at random (returns per agent, summed per episode)."""

from __future__ import annotations

import numpy as np
import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.rl_module import RLModuleSpec
from scalerl.examples.envs import MultiAgentArena
from scalerl.examples.rl_modules import RandomRLModule

ARENA_TRAINING = dict(train_batch_size=4000, minibatch_size=500, lr=1e-3, entropy_coeff=0.01)


def role(agent_id, episode, **kwargs):
    return "runner" if agent_id == "agent1" else "chaser"


def play(algo, policies: dict, episodes: int = 50, seed: int = 0) -> dict[str, float]:
    """Mean return per agent in the arena; `policies[agent]` is a module id, or None for
    uniformly random actions."""
    env = MultiAgentArena({})
    rng = np.random.default_rng(seed)
    totals: dict[str, list[float]] = {"agent1": [], "agent2": []}
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        ret = dict.fromkeys(totals, 0.0)
        done = False
        while not done:
            actions = {
                aid: int(rng.integers(4))
                if policies[aid] is None
                else algo.compute_single_action(o, policy_id=policies[aid], explore=True)
                for aid, o in obs.items()
            }
            obs, rewards, terms, truncs, _ = env.step(actions)
            for aid, r in rewards.items():
                ret[aid] += r
            done = terms["__all__"] or truncs["__all__"]
        for aid in ret:
            totals[aid].append(ret[aid])
    return {aid: float(np.mean(v)) for aid, v in totals.items()}


def train(algo, budget: int, stop=lambda runners: False) -> dict:
    while True:
        runners = algo.train()["env_runners"]
        if stop(runners) or runners["num_env_steps_sampled_lifetime"] >= budget:
            return runners


@pytest.mark.learning
def test_arena_runner_trained_against_a_random_chaser():
    """agent1 ("runner") trains against agent2 acting at random (RandomRLModule, frozen).
    Threshold: smoothed runner return >= 20 within 150k env steps, where the random
    runner's baseline is about 2.0 (measured here). Measured: 21.8 at 80k env steps,
    29.2 at 160k (seed 0); the trained runner scores 29.0 against random play afterwards."""
    algo = (
        PPOConfig()
        .environment(MultiAgentArena)
        .multi_agent(
            policies={"runner": None, "chaser": RLModuleSpec(module_class=RandomRLModule)},
            policy_mapping_fn=role,
            policies_to_train=["runner"],
        )
        .env_runners(num_envs_per_env_runner=8)
        .training(**ARENA_TRAINING)
        .debugging(seed=0)
        .build_algo()
    )
    baseline = play(algo, {"agent1": None, "agent2": None})["agent1"]
    runners = train(algo, 150_000, lambda r: r["module_episode_returns_mean"]["runner"] >= 20)
    trained = play(algo, {"agent1": "runner", "agent2": None})["agent1"]
    algo.stop()
    assert baseline < 5, baseline
    assert runners["module_episode_returns_mean"]["runner"] >= 20, runners
    assert trained >= baseline + 10, (trained, baseline)


@pytest.mark.learning
def test_arena_both_trained_each_beats_random_in_its_own_role():
    """Both modules train against each other for 160k env steps; their returns are
    reported apart, and each, played against a random opponent, beats a random player in
    its role by a margin: runner >= random runner + 3, chaser >= random chaser + 1 (per
    episode of 50 steps). Measured (seed 0): runner 8.9 vs 2.0, chaser -2.5 vs -4.5."""
    algo = (
        PPOConfig()
        .environment(MultiAgentArena)
        .multi_agent(policies={"runner", "chaser"}, policy_mapping_fn=role)
        .env_runners(num_envs_per_env_runner=8)
        .training(**ARENA_TRAINING)
        .debugging(seed=0)
        .build_algo()
    )
    runners = train(algo, 160_000)
    assert set(runners["module_episode_returns_mean"]) == {"runner", "chaser"}
    random_play = play(algo, {"agent1": None, "agent2": None})
    runner = play(algo, {"agent1": "runner", "agent2": None})["agent1"]
    chaser = play(algo, {"agent1": None, "agent2": "chaser"})["agent2"]
    algo.stop()
    assert runner >= random_play["agent1"] + 3, (runner, random_play)
    assert chaser >= random_play["agent2"] + 1, (chaser, random_play)
