"""Memory must help where the observation hides the state: stateless CartPole (CartPole-v1
without the velocities). Thresholds and budgets as issue 3 states them.

The recurrent runs take 5-15 s here, so they stay in the default suite.
"""

from __future__ import annotations

from scalerl.algorithms.ppo import PPOConfig
from scalerl.examples.envs import StatelessCartPole

BUDGET = 300_000  # env steps
THRESHOLD = 150.0  # mean training return over the last 100 episodes
MLP = {"fcnet_hiddens": [64]}
LSTM = {**MLP, "use_lstm": True, "lstm_cell_size": 64, "max_seq_len": 20}
ATTENTION = {
    **MLP,
    "use_attention": True,
    "max_seq_len": 20,
    "attention_memory_inference": 20,
    "attention_memory_training": 20,
}


def train_until(model_config: dict, seed: int = 0) -> tuple[float, float, int]:
    """(best smoothed return, last smoothed return, env steps) after reaching THRESHOLD or
    spending BUDGET."""
    algo = (
        PPOConfig()
        .environment(StatelessCartPole)
        .env_runners(num_envs_per_env_runner=16)
        .training(train_batch_size=2048, minibatch_size=512, num_epochs=6, lr=1e-3)
        .rl_module(model_config=model_config)
        .debugging(seed=seed)
        .build_algo()
    )
    best = ret = 0.0
    steps = 0
    while steps < BUDGET and ret < THRESHOLD:
        runners = algo.train()["env_runners"]
        steps = runners["num_env_steps_sampled_lifetime"]
        ret = runners.get("episode_return_mean", 0.0)
        best = max(best, ret)
    algo.stop()
    return best, ret, steps


def test_lstm_solves_stateless_cartpole_where_an_mlp_cannot():
    """LSTM: mean return >= 150 within 300k env steps. The MLP with the same settings and
    budget stays below 100 (it reached ~55 when measured)."""
    best, _, steps = train_until(LSTM)
    assert best >= THRESHOLD, f"LSTM reached {best:.1f} in {steps} steps"
    best_mlp, _, steps_mlp = train_until(MLP)
    assert steps_mlp >= BUDGET and best_mlp < 100.0, best_mlp


def test_attention_solves_stateless_cartpole():
    """GTrXL (use_attention): mean return >= 150 within 300k env steps (it took ~41k when
    measured; the MLP baseline of the test above stays below 100)."""
    best, _, steps = train_until(ATTENTION)
    assert best >= THRESHOLD, f"GTrXL reached {best:.1f} in {steps} steps"
