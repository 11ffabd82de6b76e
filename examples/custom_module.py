"""Bring your own network: a custom RLModule trained by PPO, checkpointed and restored.

A module subclasses `RLModule`, builds its layers in `setup()` and maps a batch to the
inputs of the action distribution in `_forward()`. PPO also needs V(s): implement
`ValueFunctionAPI.compute_values`. A module may also pick the actions itself by returning
`Columns.ACTIONS` (see `SelfSamplingModule`).

    python examples/custom_module.py [--iters 5] [--checkpoint-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import numpy as np
import torch
from torch import nn

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.rl_module import Columns, RLModule, RLModuleSpec, ValueFunctionAPI


class MyModule(RLModule, ValueFunctionAPI):
    """Separate policy and value MLPs over a flat Box observation, Discrete actions."""

    def setup(self) -> None:
        obs_dim = int(np.prod(self.observation_space.shape))
        hidden = int(self.model_config.get("hidden", 64))
        n = int(self.action_space.n)
        self.policy = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.logits = nn.Linear(hidden, n)
        nn.init.orthogonal_(self.logits.weight, gain=0.01)  # near-uniform first policy
        self.value = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Used by all three phases: inference, exploration and training.
        return {Columns.ACTION_DIST_INPUTS: self.logits(self.policy(batch[Columns.OBS]))}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.value(batch[Columns.OBS]).squeeze(-1)


class SelfSamplingModule(MyModule):
    """Returns `Columns.ACTIONS` itself: greedy in inference, epsilon-greedy exploration.

    EnvRunners and `compute_single_action` take the returned actions as they are. PPO still
    needs `ACTION_DIST_INPUTS` in exploration to compute log pi_old(a|s): here the logits of
    the epsilon-mixed categorical the actions were sampled from.
    """

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits = self.logits(self.policy(batch[Columns.OBS]))
        return {Columns.ACTIONS: logits.argmax(-1), Columns.ACTION_DIST_INPUTS: logits}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        eps = float(self.model_config.get("epsilon", 0.1))
        probs = torch.softmax(self.logits(self.policy(batch[Columns.OBS])), -1)
        probs = (1 - eps) * probs + eps / probs.shape[-1]
        actions = torch.multinomial(probs, 1).squeeze(-1)
        return {Columns.ACTIONS: actions, Columns.ACTION_DIST_INPUTS: probs.log()}


def build(module_class: type[RLModule], **model_config: Any) -> Algorithm:
    spec = RLModuleSpec(module_class=module_class, model_config=model_config)
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .rl_module(rl_module_spec=spec)
        .debugging(seed=0)
        .build_algo()
    )


def main(iters: int, checkpoint_dir: str) -> None:
    algo = build(MyModule, hidden=64)
    for i in range(iters):
        result = algo.train()
        print(f"iter {i + 1}: return {result['env_runners']['episode_return_mean']:.1f}")
    path = algo.save_to_path(checkpoint_dir)
    print(f"checkpoint: {path}")

    # Restore the whole algorithm, and the module alone; all three act the same.
    obs = np.random.default_rng(0).uniform(-0.2, 0.2, (32, 4)).astype(np.float32)
    restored = Algorithm.from_checkpoint(path)
    # The checkpoint names the class (`__main__:MyModule`); loading never imports it. This
    # process saved it, so it is trusted here; in another process pass it in:
    # `Algorithm.from_checkpoint(path, trusted=[MyModule])` or `MyModule.from_checkpoint(path)`.
    module = RLModule.from_checkpoint(path)  # class, spaces and model_config from the files
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: torch.from_numpy(obs)})
    same = np.array_equal(algo.compute_actions(obs), restored.compute_actions(obs)) and (
        np.array_equal(algo.compute_actions(obs), logits[Columns.ACTION_DIST_INPUTS].argmax(-1))
    )
    print(f"restored: {type(module).__name__}, same actions: {same}")
    print(f"restored iteration: {restored.iteration}")
    assert same and restored.iteration == iters
    restored.stop()
    algo.stop()

    # A module that returns its own actions trains the same way.
    algo = build(SelfSamplingModule, hidden=64, epsilon=0.1)
    result = algo.train()
    action = algo.compute_single_action(obs[0])
    print(f"self-sampling module: return {result['env_runners']['episode_return_mean']:.1f}")
    print(f"self-sampling greedy action: {action}")
    algo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5, help="PPO iterations (4000 steps each)")
    parser.add_argument("--checkpoint-dir", default=None, help="default: a temporary dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        main(args.iters, args.checkpoint_dir or f"{tmp}/checkpoint")
