"""The RLlib tutorial flow, with `ray.rllib` replaced by `scalerl` in the imports.

Run: python examples/quickstart_rllib_style.py [--num-env-runners N]
"""

import argparse

import gymnasium as gym
import ray
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig

parser = argparse.ArgumentParser()
parser.add_argument("--num-env-runners", type=int, default=2)
parser.add_argument("--iterations", type=int, default=5)
args = parser.parse_args()

ray.init(num_cpus=4, object_store_memory=1 * 1024**3, ignore_reinit_error=True)
config = (
    PPOConfig()
    .environment("CartPole-v1")
    .framework("torch")
    .env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=1)
    .training(lr=0.0003, gamma=0.99, train_batch_size=4000)
)
algo = config.build_algo()  # `config.build()` is an alias
for _ in range(args.iterations):
    result = algo.train()
    print(
        result["env_runners"]["episode_return_mean"],
        result["env_runners"]["episode_return_max"],
        result["env_runners"]["num_episodes"],
    )
state, _ = gym.make("CartPole-v1").reset()
module = algo.get_module()  # the default module
out = module.forward_inference({"obs": torch.tensor([state], dtype=torch.float32)})
action = out["action_dist_inputs"].argmax(dim=-1).item()
action = algo.compute_single_action(state)  # explore=False by default
path = algo.save()  # returns an object with .checkpoint.path
algo2 = Algorithm.from_checkpoint(path)  # accepts that object, a str or a Path
print("checkpoint:", path.checkpoint.path)
algo.stop()
algo2.stop()
