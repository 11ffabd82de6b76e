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

# preset -> (threshold on the smoothed training return, budget in env steps); measured
# (seed 0 unless stated): the return reached at that many env steps.
CASES = {
    "cartpole-ppo": (475, 100_000),  # 483.8 at 80k
    "acrobot-ppo": (-100, 200_000),  # -97.8 at 78k; seeds 1-3: 82k, 90k, 74k
    "pendulum-ppo": (-300, 200_000),  # -258.3 at 55k; seed 1: -269.9 at 49k
    "pendulum-sac": (-250, 20_000),  # -176.1 at 8k; seed 1: 7k
    "cartpole-a2c": (450, 500_000),  # 452.1 at 79k; seeds 1-3: 203k, 208k, 101k
    "cartpole-dqn": (450, 200_000),  # 452.1 at 177k
    "cartpole-rainbow": (450, 200_000),  # 452.4 at 96k
    "stateless-cartpole-r2d2": (150, 200_000),  # 151.0 at 44k; seeds 1, 2: 47k, 52k
    "multi-agent-cartpole-ppo": (900, 400_000),  # summed over both agents: 936.6 at 88k
    "lunarlander-ppo": (200, 1_500_000),  # 205.1 at 1.06M
    "halfcheetah-sac": (300, 50_000),  # 361.5 at 27k; seed 1: 309.7 at 33k
    "hopper-ppo": (800, 200_000),  # 831.2 at 68k; seed 1: 828.9 at 74k
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
