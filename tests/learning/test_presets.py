"""Every shipped preset must learn: the return threshold and env-step budget of each are
its YAML `stop:` entry, restated below (the test fails if the two disagree).

The criterion is the CLI's: the smoothed training return (mean of the last
`metrics_num_episodes_for_smoothing` episodes, exploring) reaches the threshold within the
budget. Seed 0. Measured figures (return, env steps, wall time on a shared 2-core machine)
are in the README's "Presets" table.

LunarLander needs Box2D and the MuJoCo presets need MuJoCo; their tests also carry the
`box2d` / `mujoco` markers and are deselected by default and from `make learning`: install
the extra (`pip install "scalerl[box2d]"`, `"scalerl[mujoco]"`) and run
`pytest -m box2d` / `pytest -m mujoco` (`make learning-extras` runs both).
"""

from __future__ import annotations

import math

import pytest

from scalerl.presets import list_presets, load_preset

# preset -> (threshold on the smoothed training return, budget in env steps)
CASES = {
    "cartpole-ppo": (475, 100_000),
    "acrobot-ppo": (-100, 200_000),
    "pendulum-ppo": (-300, 200_000),
    "pendulum-sac": (-250, 20_000),
    "cartpole-dqn": (450, 200_000),
    "cartpole-rainbow": (450, 200_000),
    "stateless-cartpole-r2d2": (150, 200_000),
    "multi-agent-cartpole-ppo": (900, 400_000),  # summed over both agents
    "lunarlander-ppo": (200, 1_500_000),
    "halfcheetah-sac": (300, 50_000),
    "hopper-ppo": (800, 200_000),
}
EXTRA = {"lunarlander-ppo": "box2d", "halfcheetah-sac": "mujoco", "hopper-ppo": "mujoco"}


def _param(name: str):
    marks = [getattr(pytest.mark, EXTRA[name])] if name in EXTRA else []
    return pytest.param(name, *CASES[name], marks=marks, id=name)


def train_preset(name: str, seed: int = 0) -> tuple[float, int, dict]:
    """Train preset `name` until its stop criteria; returns (smoothed return, env steps,
    the last result's `env_runners` metrics)."""
    preset = load_preset(name)
    algo = preset.build_config().debugging(seed=seed).build_algo()
    ret, steps = -math.inf, 0
    try:
        while steps < preset.stop["stop_timesteps"] and ret < preset.stop["stop_reward"]:
            result = algo.train()
            runners = result["env_runners"]
            value = runners.get("episode_return_mean", math.nan)
            ret = -math.inf if math.isnan(value) else value  # NaN: no episode finished yet
            steps = result["num_env_steps_sampled_lifetime"]
    finally:
        algo.stop()
    return ret, steps, runners


def test_every_preset_has_a_case():
    assert sorted(CASES) == list_presets()


@pytest.mark.learning
@pytest.mark.parametrize(("name", "threshold", "budget"), [_param(n) for n in CASES])
def test_preset_learns(name: str, threshold: float, budget: int):
    """Threshold and budget per preset: see CASES (and the preset's `stop:`)."""
    assert load_preset(name).stop == {"stop_reward": threshold, "stop_timesteps": budget}
    ret, steps, runners = train_preset(name)
    assert ret >= threshold, f"{name}: {ret:.1f} after {steps} env steps"
    if name == "multi-agent-cartpole-ppo":  # both policies played (and are reported apart)
        assert set(runners["module_episode_returns_mean"]) == {"p0", "p1"}
    assert steps <= budget + 20_000  # the last iteration may overshoot a little
