"""Observation normalization (MeanStdFilter) end to end, locally: sampling, training,
evaluation, checkpoints, `compute_single_action` and `scalerl evaluate`."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from scalerl.algorithms.algorithm import OBS_FILTER_FILE, Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.cli import main
from scalerl.connectors.env_to_module import MeanStdFilter
from scalerl.core.rl_module import Columns
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.env.registry import get_env_creator
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError


def config(**env_runners) -> PPOConfig:
    return (
        PPOConfig()
        .environment("Pendulum-v1", env_config={"max_episode_steps": 7})
        .env_runners(num_envs_per_env_runner=2, **env_runners)
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .evaluation(evaluation_duration=2)
        .debugging(seed=0)
    )


@pytest.fixture(scope="module")
def trained():
    """Two iterations with the filter given RLlib's way."""
    algo = config(env_to_module_connector=lambda env: MeanStdFilter(clip_by_value=5.0)).build_algo()
    results = [algo.train() for _ in range(2)]
    yield algo, results
    algo.stop()


class SpyFilter(MeanStdFilter):
    """Records every (input, output, update) passing through the filter."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[np.ndarray, np.ndarray, bool]] = []

    def __call__(self, obs, update=True):
        out = super().__call__(obs, update)
        self.calls.append((obs, out, update))
        return out


def test_runner_stores_the_filtered_observations_it_acts_on():
    cfg = config(observation_filter="MeanStdFilter")
    algo_spaces = cfg.copy().build_algo()
    spec = algo_spaces.module_spec
    algo_spaces.stop()
    runner = SingleAgentEnvRunner(cfg, get_env_creator(cfg.env), spec)
    runner.obs_filter = spy = SpyFilter(input_observation_space=spec.observation_space)
    T = 20  # episodes of 7 steps: several truncations inside the fragment
    batch, _ = runner.sample(T)

    # One reset call, then one batched call per vector step, then the truncation obs.
    assert [update for _, _, update in spy.calls] == [True] * (T + 1) + [False]
    for t in range(T):
        np.testing.assert_array_equal(batch[Columns.OBS][t], spy.calls[t][1])
    np.testing.assert_array_equal(batch["bootstrap_obs"], spy.calls[T][1])
    assert len(batch["trunc_index"]) == 2 * (T // 7)
    np.testing.assert_array_equal(batch["trunc_obs"], spy.calls[-1][1])
    raw, filtered, _ = spy.calls[T]
    assert not np.allclose(raw, filtered)  # normalized, not passed through
    assert spy.running[0].n == 2 * (T + 1)


def test_training_counts_every_step_and_evaluation_leaves_stats_alone(trained):
    algo, results = trained
    assert algo.config.observation_filter["clip_by_value"] == 5.0
    steps = results[-1]["num_env_steps_sampled_lifetime"]
    stat = algo.obs_filter.running[0]
    assert stat.n == steps + 2  # + the first reset of the 2 envs
    # Pendulum's observation (cos, sin, angular velocity): the velocity is the widest.
    assert stat.std[2] > stat.std[0]

    before = algo.obs_filter.get_state()
    evaluation = algo.evaluate()
    assert evaluation["env_runners"]["num_episodes"] == 2
    assert algo.obs_filter.get_state() == before
    # The evaluation runner filters with the central statistics, frozen.
    assert algo.eval_env_runner_group.obs_filter.get_state() == before


def test_compute_single_action_normalizes_like_the_filter(trained):
    algo, _ = trained
    stat = algo.obs_filter.running[0]
    obs = np.array([0.3, -0.9, 7.5], np.float32)
    manual = np.clip((obs - stat.mean) / (stat.std + 1e-8), -5.0, 5.0).astype(np.float32)
    module = algo.get_module()
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: torch.from_numpy(manual[None])})
        mean = module.get_inference_action_dist_cls()(out[Columns.ACTION_DIST_INPUTS])
        expected = mean.deterministic_sample()[0].numpy()
    low, high = algo.get_module().action_space.low, algo.get_module().action_space.high
    expected = low + (np.clip(expected, -1, 1) + 1) * 0.5 * (high - low)
    np.testing.assert_allclose(algo.compute_single_action(obs), expected, rtol=1e-5)
    # Unfiltered input would give another action: the filter is really applied.
    with torch.no_grad():
        raw = module.forward_inference({Columns.OBS: torch.from_numpy(obs[None])})
    assert not torch.allclose(raw[Columns.ACTION_DIST_INPUTS], out[Columns.ACTION_DIST_INPUTS])


def test_checkpoint_round_trip_restores_stats_and_greedy_actions(trained, tmp_path):
    algo, _ = trained
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    stored = json.loads((tmp_path / "ckpt" / OBS_FILTER_FILE).read_text())
    assert stored == algo.obs_filter.get_state()
    restored = Algorithm.from_checkpoint(path)
    try:
        assert restored.obs_filter.get_state() == algo.obs_filter.get_state()
        obs = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32) * 3
        np.testing.assert_array_equal(restored.compute_actions(obs), algo.compute_actions(obs))
        restored.train()  # statistics keep growing from the restored ones
        assert restored.obs_filter.running[0].n > algo.obs_filter.running[0].n
    finally:
        restored.stop()

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["evaluate", path, "--episodes", "1", "--seed", "0"]) == 0
    assert "episode   1: return" in out.getvalue() and "length 7" in out.getvalue()


def _rewrite(path, name, data):
    """Replace a checkpoint file and re-record its checksum (a consistent but wrong file)."""
    (path / name).write_text(json.dumps(data))
    ckpt.write_manifest(path, "Algorithm")


def test_corrupt_mismatched_or_missing_filter_file(trained, tmp_path):
    algo, _ = trained
    path = tmp_path / "ckpt"
    algo.save(path)
    file = path / OBS_FILTER_FILE

    text = file.read_text()
    file.write_text(text.replace('"n": ', '"n": 1', 1))
    with pytest.raises(CheckpointError, match=f"{OBS_FILTER_FILE}.*corrupt"):
        Algorithm.from_checkpoint(path)

    state = json.loads(text)
    state["leaves"][0]["mean"] = [0.0, 0.0]
    _rewrite(path, OBS_FILTER_FILE, state)
    with pytest.raises(CheckpointError, match=f"{OBS_FILTER_FILE}.*does not fit.*shape"):
        Algorithm.from_checkpoint(path)

    # A checkpoint from before the filter existed: no file, none recorded. Stats start fresh.
    file.unlink()
    ckpt.write_manifest(path, "Algorithm")
    old = Algorithm.from_checkpoint(path)
    try:
        assert old.obs_filter.running[0].n == 0
    finally:
        old.stop()


def test_no_filter_by_default_writes_no_filter_file(tmp_path):
    algo = config().build_algo()
    try:
        assert algo.obs_filter is None and algo.config.observation_filter == "NoFilter"
        algo.train()
        algo.save(tmp_path / "ckpt")
        assert not (tmp_path / "ckpt" / OBS_FILTER_FILE).exists()
    finally:
        algo.stop()
