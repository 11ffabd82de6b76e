"""Ray Tune with scalerl: RLlib's tuning script with `ray.rllib` replaced by `scalerl`.

A grid search over the learning rate and the network width (a sampled gamma on top),
stopped at a return or a step budget, checkpointing every few iterations; then the best
trial's checkpoint is loaded and evaluated. Needs `pip install scalerl[tune]`.

Run: python examples/tune_grid_search.py [--steps 20000] [--return 150] [--cpus 2]
"""

import argparse
import tempfile

import ray
from ray import tune

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=20_000, help="env steps per trial at most")
parser.add_argument("--return", dest="target", type=float, default=150.0, help="stop return")
parser.add_argument("--cpus", type=int, default=2, help="CPUs for Ray (one per trial)")
parser.add_argument("--storage", default=None, help="results directory (default: a temp dir)")
args = parser.parse_args()

ray.init(num_cpus=args.cpus, include_dashboard=False)
config = (
    PPOConfig()
    .environment("CartPole-v1")
    .training(
        lr=tune.grid_search([1e-3, 3e-4]),
        gamma=tune.uniform(0.97, 0.995),
        train_batch_size_per_learner=1000,
        minibatch_size=250,
        num_epochs=5,
    )
    .rl_module(model_config={"fcnet_hiddens": tune.grid_search([[32, 32], [64, 64]])})
)
tuner = tune.Tuner(
    "PPO",  # scalerl's PPO; `PPO` or `config.algo_class` work too
    param_space=config,
    run_config=tune.RunConfig(
        storage_path=args.storage or tempfile.mkdtemp(prefix="scalerl_tune_"),
        # A trial stops at whichever comes first.
        stop={
            "env_runners/episode_return_mean": args.target,
            "num_env_steps_sampled_lifetime": args.steps,
        },
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=5, checkpoint_at_end=True, num_to_keep=2
        ),
    ),
)
results = tuner.fit()

for result in results:
    cfg, m = result.config, result.metrics
    print(
        f"lr={cfg['lr']:g} hiddens={cfg['model_config']['fcnet_hiddens']} "
        f"gamma={cfg['gamma']:.3f}: return {m['env_runners']['episode_return_mean']:.1f} "
        f"after {m['num_env_steps_sampled_lifetime']} steps"
    )
best = results.get_best_result(metric="env_runners/episode_return_mean", mode="max")
algo = Algorithm.from_checkpoint(best.checkpoint.path)
print("best:", best.config["lr"], best.config["model_config"]["fcnet_hiddens"])
print("best trial's iterations:", algo.training_iteration)
print("greedy evaluation return:", algo.evaluate()["env_runners"]["episode_return_mean"])
algo.stop()
