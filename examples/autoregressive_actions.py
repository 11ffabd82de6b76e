"""Autoregressive actions: PPO with a module that draws a2 given the a1 it just drew.

In `CorrelatedActionsEnv` the action is (a1, a2): a1 must vary from step to step (so the
policy must keep it random) and a2 must answer it, a2 = (a1 + k) mod n. Independent heads,
p(a1|s) q(a2|s), cannot do both; `AutoregressiveActionsModule`'s p(a1|s) p(a2|s, a1) can.
This trains it and the same network with a2's head blind to a1, for the same env steps.

    python examples/autoregressive_actions.py [--steps 40000] [--seed 0]
"""

from __future__ import annotations

import argparse

from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.rl_module import RLModuleSpec
from scalerl.examples.envs import CorrelatedActionsEnv
from scalerl.examples.rl_modules import AutoregressiveActionsModule


def train(autoregressive: bool, steps: int, seed: int) -> float:
    """Train PPO for `steps` env steps; return the mean of 50 evaluation episodes."""
    spec = RLModuleSpec(
        module_class=AutoregressiveActionsModule,
        model_config={"hidden": 64, "autoregressive": autoregressive},
    )
    algo = (
        PPOConfig()
        .environment(CorrelatedActionsEnv, env_config={"num_actions": 4, "episode_len": 20})
        .env_runners(num_envs_per_env_runner=8)
        # The a1 reward depends only on the next step's a1: a short horizon suffices.
        .training(train_batch_size=2000, minibatch_size=250, num_epochs=4, lr=3e-3, gamma=0.5)
        .rl_module(rl_module_spec=spec)
        # The best policy is stochastic (a1 must vary), so evaluate it sampling.
        .evaluation(evaluation_duration=50, evaluation_config={"explore": True})
        .debugging(seed=seed)
        .build_algo()
    )
    while algo.num_env_steps_sampled_lifetime < steps:
        algo.train()
    if autoregressive:
        obs = CorrelatedActionsEnv().reset(seed=seed)[0]
        print(f"sampled action for {obs}: {algo.compute_single_action(obs, explore=True)}")
    result = algo.evaluate()["env_runners"]["episode_return_mean"]
    algo.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="env steps per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    env = CorrelatedActionsEnv({"num_actions": 4, "episode_len": 20})
    print(
        f"returns: max {env.max_return:.2f}, independent heads at best "
        f"{env.factorized_bound:.2f}, random {env.random_return:.2f}"
    )
    ar = train(True, args.steps, args.seed)
    print(f"autoregressive heads: {ar:.2f}")
    independent = train(False, args.steps, args.seed)
    print(f"independent heads: {independent:.2f}")


if __name__ == "__main__":
    main()
