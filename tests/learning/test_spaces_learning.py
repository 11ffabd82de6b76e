"""PPO learns tasks beyond flat vectors: image observations (default CNN) and action masking.

Each test states its threshold and env-step budget. Seed 0 of each runs in the default suite
(a few seconds); the other seeds carry the `learning` marker.
"""

import numpy as np
import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.rl_module import Columns
from scalerl.examples.envs import ActionMaskEnv, ImageTargetEnv

SEEDS = [0, pytest.param(1, marks=pytest.mark.learning)]


def train_until(algo, stop_return: float, max_steps: int) -> tuple[float, int]:
    """Train until the smoothed training return reaches `stop_return` or `max_steps` env
    steps are used. Returns (last smoothed return, env steps used)."""
    value, steps = float("-inf"), 0
    while steps < max_steps and value < stop_return:
        result = algo.train()
        steps = result["num_env_steps_sampled_lifetime"]
        value = result["env_runners"]["episode_return_mean"]
    return value, steps


def random_return(env, episodes: int, seed: int, valid_only: bool = False) -> float:
    """Mean return of a uniformly random policy (over the valid actions if `valid_only`)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done = False
        while not done:
            n = env.action_space.n
            choices = np.flatnonzero(obs["action_mask"]) if valid_only else np.arange(n)
            obs, r, term, trunc, _ = env.step(int(rng.choice(choices)))
            total += r
            done = term or trunc
    return total / episodes


# -- image observations ------------------------------------------------------------------

IMAGE_TRAINING = dict(train_batch_size=1000, minibatch_size=250, num_epochs=4, lr=1e-3)
# Small filters keep this fast: 16x16x3 -> 4x4x8 -> 2x2x16 features.
IMAGE_MODEL = {"conv_filters": [[8, 4, 4], [16, 2, 2]], "fcnet_hiddens": [32]}


@pytest.mark.parametrize("seed", SEEDS)
def test_ppo_cnn_learns_image_target(seed):
    """ImageTargetEnv (16x16x3 uint8 noisy images, 10 steps; name the quadrant of the bright
    square) with the default CNN encoder built from the image space.

    Threshold: greedy evaluation mean >= 9.0 of 10 over 20 episodes (a random policy gets
    2.5, measured below). Budget: 50k env steps (seeds 0 and 1 got there in 17-18k steps).
    """
    env = ImageTargetEnv()
    rand = random_return(env, episodes=200, seed=seed)
    assert abs(rand - env.random_return) < 0.5, rand
    algo = (
        PPOConfig()
        .environment(ImageTargetEnv)
        .env_runners(num_envs_per_env_runner=8)
        .training(**IMAGE_TRAINING)
        .rl_module(model_config=IMAGE_MODEL)
        .evaluation(evaluation_duration=20)
        .debugging(seed=seed)
        .build_algo()
    )
    assert len(algo.get_module().pre.cnns) == 1  # the image went through a CNN
    _, steps = train_until(algo, stop_return=9.0, max_steps=50_000)
    evaluation = algo.evaluate()["env_runners"]
    algo.stop()
    assert steps <= 50_000
    assert evaluation["num_episodes"] == 20
    assert evaluation["episode_return_mean"] >= 9.0, (steps, evaluation, rand)


# -- action masking ----------------------------------------------------------------------


class CheckedActionMaskEnv(ActionMaskEnv):
    """ActionMaskEnv that counts every step it checks (the parent raises `ValueError` on a
    masked action, which would stop training) and every masked action it was sent."""

    def __init__(self, config=None):
        super().__init__(config)
        self.checked_steps = 0
        self.violations = 0

    def step(self, action):
        self.checked_steps += 1
        self.violations += int(self.action_mask[int(action)] != 1.0)
        return super().step(action)


def masked_actions_in(batch: dict) -> int:
    """How many recorded actions of a train batch ([T, N]) the recorded obs mask forbids."""
    mask, actions = batch[Columns.OBS]["action_mask"], batch[Columns.ACTIONS]
    taken = np.take_along_axis(mask, actions[..., None].astype(np.int64), axis=-1)[..., 0]
    return int((taken != 1.0).sum())


MASK_TRAINING = dict(train_batch_size=1000, minibatch_size=250, num_epochs=4, lr=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_ppo_never_takes_masked_actions_and_learns(seed):
    """ActionMaskEnv (6 actions, 1-5 valid each step, 20 steps; pick the target among them).

    No masked action is ever taken: every env step of training and evaluation is checked
    by the env (and the counts cover all sampled steps), every train batch's actions are
    checked against its recorded masks, and `compute_single_action` (greedy and exploring,
    before and after training) never returns a masked action.

    Threshold: greedy evaluation mean >= 18 of 20 over 20 episodes, and a smoothed training
    (exploring) return >= 15 (a random valid policy gets 9.13, measured below). Budget: 40k
    env steps.
    """
    rand = random_return(ActionMaskEnv(), episodes=200, seed=seed, valid_only=True)
    assert abs(rand - ActionMaskEnv().random_return) < 0.6, rand
    algo = (
        PPOConfig()
        .environment(CheckedActionMaskEnv)
        .env_runners(num_envs_per_env_runner=8)
        .training(**MASK_TRAINING)
        .rl_module(model_config={"fcnet_hiddens": [32]})
        .evaluation(evaluation_duration=20)
        .debugging(seed=seed)
        .build_algo()
    )
    probe = ActionMaskEnv()

    def single_action_violations() -> int:
        obs, _ = probe.reset(seed=seed)
        bad = 0
        for _ in range(200):
            for explore in (False, True):
                a = algo.compute_single_action(obs, explore=explore)
                bad += int(obs["action_mask"][a] != 1.0)
            obs, *_ = probe.step(int(np.argmax(obs["observations"])))
        return bad

    assert single_action_violations() == 0  # untrained: masking alone keeps actions valid

    batch_violations, batch_steps = [], []
    update = algo.learner_group.update

    def checked_update(batches, **kwargs):
        batch = batches["default_policy"]
        batch_violations.append(masked_actions_in(batch))
        batch_steps.append(batch[Columns.REWARDS].size)
        return update(batches, **kwargs)

    algo.learner_group.update = checked_update
    value, steps = train_until(algo, stop_return=19.0, max_steps=40_000)
    evaluation = algo.evaluate()["env_runners"]

    train_envs = algo.env_runner_group.local_runner.envs
    eval_envs = algo.eval_env_runner_group.local_runner.envs
    assert sum(e.checked_steps for e in train_envs) == steps == sum(batch_steps)
    assert sum(e.checked_steps for e in eval_envs) == evaluation["num_env_steps_sampled"]
    assert sum(e.violations for e in train_envs + eval_envs) == 0
    assert sum(batch_violations) == 0 and len(batch_violations) == steps // 1000
    assert single_action_violations() == 0
    algo.stop()
    assert steps <= 40_000
    assert value >= 15.0, (value, steps)
    assert evaluation["episode_return_mean"] >= 18.0, (evaluation, rand)


def test_masked_action_check_finds_masked_actions():
    """The batch check above can fail: it counts an action its recorded mask forbids."""
    mask = np.array([[[1, 0, 1], [0, 1, 0]]], np.float32)  # [T=1, N=2, n=3]
    obs = {"action_mask": mask, "observations": mask}
    assert masked_actions_in({Columns.OBS: obs, Columns.ACTIONS: np.array([[2, 1]])}) == 0
    assert masked_actions_in({Columns.OBS: obs, Columns.ACTIONS: np.array([[1, 1]])}) == 1
