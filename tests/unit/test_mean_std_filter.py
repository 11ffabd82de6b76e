"""MeanStdFilter math: exact parallel merge, the filtered value, nested spaces, settings."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.connectors.env_to_module import MeanStdFilter
from scalerl.connectors.env_to_module.mean_std_filter import RunningStat
from scalerl.utils.errors import ConfigError

BOX = gym.spaces.Box(-np.inf, np.inf, (2, 3), np.float32)


def data(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2, 3)) * [[1.0, 10.0, 0.1]] + [[5.0, -3.0, 100.0]]).astype(
        np.float32
    )


def test_merging_two_runners_deltas_equals_the_stats_of_the_concatenated_data():
    central = MeanStdFilter(input_observation_space=BOX)
    runner_a = MeanStdFilter(input_observation_space=BOX)
    runner_b = MeanStdFilter(input_observation_space=BOX)
    a1, a2, b1 = data(0, 7), data(1, 1), data(2, 13)
    runner_a(a1), runner_a(a2), runner_b(b1)  # one update per vector step
    central.merge_states([runner_a.get_delta_state(), runner_b.get_delta_state()])

    every = np.concatenate([a1, a2, b1]).astype(np.float64)
    stat = central.running[0]
    assert stat.n == 21
    np.testing.assert_allclose(stat.mean, every.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stat.std, every.std(axis=0, ddof=1), rtol=1e-12)
    # Folding the concatenation in at once gives the same numbers as the merge.
    whole = RunningStat(BOX.shape)
    whole.push_batch(every)
    np.testing.assert_allclose(stat.m2, whole.m2, rtol=1e-12)

    # A second round: deltas were reset, so nothing is counted twice.
    runner_a.reset_delta()
    runner_b.reset_delta()
    a3 = data(3, 5)
    runner_a(a3)
    central.merge_states([runner_a.get_delta_state(), runner_b.get_delta_state()])
    every = np.concatenate([every, a3])
    assert central.running[0].n == 26
    np.testing.assert_allclose(central.running[0].mean, every.mean(axis=0), rtol=1e-12)


def test_filtered_value_is_clipped_standard_score_and_update_false_freezes_stats():
    f = MeanStdFilter(clip_by_value=2.0, input_observation_space=BOX)
    x = data(0, 50)
    f(x)
    mean, std = x.astype(np.float64).mean(0), x.astype(np.float64).std(0, ddof=1)
    probe = np.stack([mean, mean + 1.5 * std, mean - 7.0 * std])
    before = f.get_state()
    out = f(probe, update=False)
    assert f.get_state() == before
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], 0.0, atol=1e-4)
    np.testing.assert_allclose(out[1], 1.5, rtol=1e-4)
    np.testing.assert_allclose(out[2], -2.0)  # clipped at -clip_by_value

    unclipped = MeanStdFilter(clip_by_value=None, input_observation_space=BOX)
    unclipped(x)
    np.testing.assert_allclose(unclipped(probe, update=False)[2], -7.0, rtol=1e-4)
    scale_only = MeanStdFilter(de_mean_to_zero=False, input_observation_space=BOX)
    scale_only(x)
    expected = np.clip(mean / std, -10.0, 10.0)  # the default clip_by_value=10 still applies
    np.testing.assert_allclose(scale_only(probe, update=False)[0], expected, rtol=1e-4)
    assert expected.max() == 10.0


def test_fresh_filter_only_clips_and_update_stats_false_never_learns():
    f = MeanStdFilter(update_stats=False, input_observation_space=BOX)
    x = data(0, 4)
    np.testing.assert_allclose(f(x), np.clip(x, -10, 10), rtol=1e-6)
    assert f.running[0].n == 0 and f.delta[0].n == 0


def test_nested_spaces_normalize_float_boxes_only_and_never_the_action_mask():
    image = gym.spaces.Box(0, 255, (4, 4, 3), np.uint8)
    space = gym.spaces.Dict(
        {
            "pos": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
            "parts": gym.spaces.Tuple((image, gym.spaces.Discrete(3), BOX)),
            "md": gym.spaces.MultiDiscrete([2, 3]),
            "mb": gym.spaces.MultiBinary(4),
        }
    )
    f = MeanStdFilter(input_observation_space=space)
    assert f.paths == [("parts", 2), ("pos",)]  # gymnasium sorts Dict keys
    obs = {
        "pos": np.array([[0.5, -0.5], [0.1, 0.3]]),
        "parts": (np.full((2, 4, 4, 3), 200, np.uint8), np.array([0, 2]), data(0, 2)),
        "md": np.array([[1, 2], [0, 0]]),
        "mb": np.ones((2, 4), np.int8),
    }
    out = f(obs)
    assert isinstance(out["parts"], tuple)
    assert out["parts"][0] is obs["parts"][0] and out["parts"][1] is obs["parts"][1]
    assert out["md"] is obs["md"] and out["mb"] is obs["mb"]
    assert out["pos"].dtype == np.float64 and out["parts"][2].dtype == np.float32
    # Two samples per element: the standard scores are +-1/sqrt(2).
    np.testing.assert_allclose(np.abs(out["pos"]), np.sqrt(0.5), rtol=1e-6)

    masked = gym.spaces.Dict(
        {"action_mask": gym.spaces.Box(0.0, 1.0, (3,), np.float32), "observations": BOX}
    )
    f = MeanStdFilter(input_observation_space=masked)
    assert f.paths == [("observations",)]
    mask = np.array([[1, 0, 1], [0, 1, 1]], np.float32)
    out = f({"action_mask": mask, "observations": data(1, 2)})
    assert out["action_mask"] is mask


def test_state_is_json_exact_and_a_mismatched_state_is_refused():
    f = MeanStdFilter(input_observation_space=BOX)
    f(data(0, 9))
    g = MeanStdFilter(input_observation_space=BOX)
    g.set_state(json.loads(json.dumps(f.get_state())))
    assert g.running[0].n == 9
    assert np.array_equal(g.running[0].mean, f.running[0].mean)
    assert np.array_equal(g.running[0].m2, f.running[0].m2)

    other = MeanStdFilter(input_observation_space=gym.spaces.Box(-1, 1, (4,), np.float32))
    with pytest.raises(ValueError, match="shape"):
        other.set_state(f.get_state())
    nested = MeanStdFilter(input_observation_space=gym.spaces.Dict({"a": BOX}))
    with pytest.raises(ValueError, match=r"leaves \['<root>'\].*\['a'\]"):
        nested.set_state(f.get_state())
    with pytest.raises(ValueError, match="format"):
        g.set_state({"leaves": []})


@pytest.mark.parametrize(
    "value, match",
    [
        ("MeanStdFiltr", "`observation_filter` 'MeanStdFiltr'.*Did you mean `MeanStdFilter`"),
        ("ConcurrentMeanStdFilter", "Valid: 'NoFilter', 'MeanStdFilter'"),
        ({"type": "MeanStdFilter", "clip": 5}, "unknown setting.*clip_by_value"),
        ({"type": "MeanStdFilter", "clip_by_value": -1}, "clip_by_value` must be > 0"),
    ],
)
def test_bad_observation_filter_is_a_config_error(value, match):
    config = PPOConfig().environment("Pendulum-v1").env_runners(observation_filter=value)
    with pytest.raises(ConfigError, match=match):
        config.validate()


def test_env_to_module_connector_errors_name_what_is_supported():
    base = PPOConfig().environment("Pendulum-v1")
    with pytest.raises(ConfigError, match="must be a callable"):
        base.copy().env_runners(env_to_module_connector="MeanStdFilter").validate()
    with pytest.raises(ConfigError, match="lambda env: MeanStdFilter"):
        base.copy().env_runners(env_to_module_connector=MeanStdFilter()).validate()
    with pytest.raises(ConfigError, match="set one of them"):
        base.copy().env_runners(
            observation_filter="MeanStdFilter", env_to_module_connector=lambda env: []
        ).validate()
    with pytest.raises(ConfigError, match="does not support custom env-to-module connectors"):
        base.copy().env_runners(env_to_module_connector=lambda env: [1, 2]).build_algo()
    # RLlib's multi-agent flag is accepted: multi-agent runs filter per module anyway.
    assert MeanStdFilter(multi_agent=True).settings == MeanStdFilter().settings


def test_connector_is_stored_as_its_settings_and_restores_from_dict():
    config = PPOConfig().environment("Pendulum-v1")
    # RLlib's newer three-argument form, returning a list with the one connector.
    config.env_runners(
        env_to_module_connector=lambda env, spaces, device: [MeanStdFilter(clip_by_value=3.0)]
    )
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored["env_to_module_connector"] is None
    assert stored["observation_filter"] == {
        "type": "MeanStdFilter",
        "de_mean_to_zero": True,
        "de_std_to_one": True,
        "clip_by_value": 3.0,
        "update_stats": True,
    }
    restored = PPOConfig.from_dict(stored)
    restored.validate()
    assert restored.observation_filter == stored["observation_filter"]
