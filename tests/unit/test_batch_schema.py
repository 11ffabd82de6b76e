"""The batch schema (utils.batch_schema): concat/split follow each column's layout, an
unknown column is an error, and the flat on-disk form round-trips exactly."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.core.columns import Columns
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.env.registry import get_env_creator
from scalerl.utils import nested
from scalerl.utils.batch import (
    concat_columns,
    concat_fragments,
    from_flat,
    load_batch,
    save_batch,
    split_fragment,
    to_flat,
)
from scalerl.utils.batch_schema import (
    FRAGMENT,
    SEQUENCES,
    TRANSITIONS,
    Column,
    Layout,
    UnknownColumnError,
)
from scalerl.utils.replay_buffers import n_step_transitions

C = Columns


def flat_fragment(T: int, N: int, seed: int, truncs: list[tuple[int, int]] = ()) -> dict:
    rng = np.random.default_rng(seed)
    K = len(truncs)
    return {
        C.OBS: rng.normal(size=(T, N, 3)).astype(np.float32),
        C.ACTIONS: rng.integers(0, 2, size=(T, N)),
        C.REWARDS: rng.normal(size=(T, N)).astype(np.float32),
        C.TERMINATEDS: rng.random((T, N)) < 0.1,
        C.TRUNCATEDS: np.zeros((T, N), bool),
        C.ACTION_DIST_INPUTS: rng.normal(size=(T, N, 2)).astype(np.float32),
        C.BOOTSTRAP_OBS: rng.normal(size=(N, 3)).astype(np.float32),
        C.TRUNC_INDEX: np.array(truncs, np.int64).reshape(-1, 2),
        C.TRUNC_OBS: rng.normal(size=(K, 3)).astype(np.float32),
    }


def dict_obs_fragment(T: int, N: int, seed: int, truncs=((1, 0),)) -> dict:
    rng = np.random.default_rng(seed)
    fragment = flat_fragment(T, N, seed, list(truncs))

    def obs(*lead):
        return {
            "pos": rng.normal(size=(*lead, 2)).astype(np.float32),
            "inner": {
                "id": rng.integers(0, 5, size=lead),
                "img": rng.integers(0, 255, (*lead, 2, 2)).astype(np.uint8),
            },
            "pair": (rng.random(lead) < 0.5, rng.normal(size=lead)),
        }

    fragment[C.OBS] = obs(T, N)
    fragment[C.BOOTSTRAP_OBS] = obs(N)
    fragment[C.TRUNC_OBS] = obs(len(truncs))
    return fragment


def recurrent_fragment(T: int, N: int, seed: int, starts, truncs=()) -> dict:
    rng = np.random.default_rng(seed)
    fragment = flat_fragment(T, N, seed, list(truncs))

    def state(*lead):
        return {
            "h": rng.normal(size=(*lead, 4)).astype(np.float32),
            "c": rng.normal(size=(*lead, 4)),
        }

    fragment.update(
        {
            C.PREV_ACTIONS: rng.integers(0, 2, size=(T, N)),
            C.PREV_REWARDS: rng.normal(size=(T, N)).astype(np.float32),
            C.SEQ_INDEX: np.array(starts, np.int64),
            C.STATE_IN: state(len(starts)),
            C.BOOTSTRAP_STATE: state(N),
            C.TRUNC_STATE: state(len(truncs)),
        }
    )
    return fragment


def assert_same(a, b):
    """Equal structures (dict keys in order, tuples stay tuples) of equal arrays and dtypes."""
    assert type(a) is type(b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


FRAGMENTS = {
    "flat": lambda seed: flat_fragment(4, 3, seed),
    "truncations": lambda seed: flat_fragment(4, 3, seed, [(0, 2), (3, 0), (1, 1)]),
    "dict_obs": lambda seed: dict_obs_fragment(4, 3, seed),
    "recurrent": lambda seed: recurrent_fragment(5, 2, seed, [(0, 0), (0, 1), (3, 1)], [(2, 1)]),
}


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_flat_form_round_trips_exactly(name, tmp_path: Path):
    fragment = FRAGMENTS[name](0)
    arrays, meta = to_flat(fragment)
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    assert meta["schema"] == "fragment"
    assert meta["columns"][C.REWARDS]["layout"] == "time_major"
    assert_same(from_flat(arrays, meta), fragment)
    # The same through a safetensors file (the metadata in its header).
    save_batch(tmp_path / "batch.safetensors", fragment)
    assert_same(load_batch(tmp_path / "batch.safetensors"), fragment)


def test_flat_names_follow_the_nesting():
    arrays, meta = to_flat(dict_obs_fragment(2, 2, 0))
    assert {"obs/pos", "obs/inner/id", "obs/inner/img", "obs/pair/0", "obs/pair/1"} <= set(arrays)
    assert meta["columns"][C.TRUNC_OBS] == {
        "layout": "rows",
        "index": C.TRUNC_INDEX,
        "spec": meta["columns"][C.OBS]["spec"],
    }


def test_transitions_round_trip_with_their_schema(tmp_path: Path):
    transitions = n_step_transitions(flat_fragment(4, 2, 0, [(1, 1)]), n=3, gamma=0.9)
    save_batch(tmp_path / "t.safetensors", transitions, TRANSITIONS)
    assert_same(load_batch(tmp_path / "t.safetensors"), transitions)
    with pytest.raises(UnknownColumnError, match="`next_obs` is not in scalerl's fragment"):
        to_flat(transitions)  # not a fragment


def test_stored_layout_must_match_the_schema():
    arrays, meta = to_flat(flat_fragment(2, 2, 0))
    meta["columns"][C.BOOTSTRAP_OBS]["layout"] = "time_major"
    with pytest.raises(ValueError, match="`bootstrap_obs` has layout 'time_major'"):
        from_flat(arrays, meta)
    with pytest.raises(ValueError, match="Not a scalerl batch"):
        from_flat(arrays, {**meta, "version": 99})


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_concat_then_split_returns_the_parts(name):
    parts = [FRAGMENTS[name](seed) for seed in range(3)]
    joined = concat_fragments(parts)
    N = parts[0][C.REWARDS].shape[1]
    assert joined[C.REWARDS].shape == (parts[0][C.REWARDS].shape[0], 3 * N)
    assert len(joined[C.TRUNC_INDEX]) == 3 * len(parts[0][C.TRUNC_INDEX])
    for got, want in zip(split_fragment(joined, 3), parts, strict=True):
        assert_same(got, want)
    # Uneven splits join back to the same fragment, up to the order of the index rows.
    assert_same(rows_sorted(concat_fragments(split_fragment(joined, 2))), rows_sorted(joined))


def rows_sorted(fragment: dict) -> dict:
    """The fragment with each ROW_INDEX column's rows (and their ROWS) sorted by (env, t)."""
    out = dict(fragment)
    for name in FRAGMENT.names(Layout.ROW_INDEX):
        if name in fragment:
            order = np.lexsort((fragment[name][:, 0], fragment[name][:, 1]))
            for key in (name, *(k for k in FRAGMENT.rows_of(name) if k in fragment)):
                out[key] = nested.index(fragment[key], order)
    return out


def test_split_keeps_rows_with_their_envs():
    fragment = recurrent_fragment(
        5, 3, 0, [(0, 0), (0, 1), (0, 2), (2, 2), (4, 0)], [(1, 2), (3, 0)]
    )
    left, right = split_fragment(fragment, 2)  # envs 0-1 | 2
    np.testing.assert_array_equal(left[C.SEQ_INDEX], [[0, 0], [0, 1], [4, 0]])
    np.testing.assert_array_equal(right[C.SEQ_INDEX], [[0, 0], [2, 0]])
    np.testing.assert_array_equal(right[C.STATE_IN]["h"], fragment[C.STATE_IN]["h"][[2, 3]])
    np.testing.assert_array_equal(left[C.TRUNC_INDEX], [[3, 0]])
    np.testing.assert_array_equal(right[C.TRUNC_INDEX], [[1, 0]])
    np.testing.assert_array_equal(right[C.TRUNC_STATE]["c"], fragment[C.TRUNC_STATE]["c"][[0]])
    np.testing.assert_array_equal(
        right[C.BOOTSTRAP_STATE]["h"], fragment[C.BOOTSTRAP_STATE]["h"][2:]
    )


def test_columns_end_to_end_offset_every_row_index_in_time():
    a = recurrent_fragment(3, 1, 0, [(0, 0), (2, 0)], [(1, 0)])
    b = recurrent_fragment(2, 1, 1, [(0, 0)], [(1, 0)])
    joined = concat_columns([a, b])
    assert joined[C.REWARDS].shape == (5, 1)
    np.testing.assert_array_equal(joined[C.SEQ_INDEX], [[0, 0], [2, 0], [3, 0]])
    np.testing.assert_array_equal(joined[C.TRUNC_INDEX], [[1, 0], [4, 0]])
    assert_same(joined[C.BOOTSTRAP_OBS], b[C.BOOTSTRAP_OBS])  # the last part's
    assert joined[C.STATE_IN]["h"].shape == (3, 4)


def test_unknown_column_is_an_error_everywhere():
    bad = {**flat_fragment(2, 2, 0), "trunc_obz": np.zeros((0, 3))}
    for call in (
        lambda: concat_fragments([bad, bad]),
        lambda: concat_fragments([bad]),
        lambda: concat_columns([bad, bad]),
        lambda: split_fragment(bad, 2),
        lambda: to_flat(bad),
    ):
        with pytest.raises(UnknownColumnError, match="Did you mean `trunc_obs`") as info:
            call()
        assert "`trunc_obz` is not in scalerl's fragment schema" in str(info.value)


def test_a_registered_column_concatenates_by_its_layout():
    schema = type(FRAGMENT)("fragment", list(FRAGMENT))  # a copy: leave the global one
    schema.register(Column("intrinsic_rewards", Layout.TIME_MAJOR, "[T, N]", "r^i_t"))
    assert schema["intrinsic_rewards"].layout is Layout.TIME_MAJOR
    with pytest.raises(ValueError, match="names its index"):
        Column("x", Layout.ROWS, "[K]", "x")
    with pytest.raises(ValueError, match="must be a ROW_INDEX"):
        schema.register(Column("x", Layout.ROWS, "[K]", "x", index=C.OBS))


def test_runner_fragments_hold_only_declared_columns():
    """Every column a real (recurrent) EnvRunner writes is in the schema, and its layout
    matches the shapes: TIME_MAJOR [T, N], PER_ENV [N], ROW_INDEX [K, 2], ROWS [K]."""
    cfg = (
        PPOConfig()
        .environment("Pendulum-v1", env_config={"max_episode_steps": 7})
        .env_runners(num_envs_per_env_runner=2)
        .rl_module(model_config={"use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 4})
        .debugging(seed=0)
    )
    env = gym.make("Pendulum-v1")
    spec = cfg.get_rl_module_spec(env.observation_space, env.action_space)
    runner = SingleAgentEnvRunner(cfg, get_env_creator(cfg.env), spec)
    T, N = 16, 2
    fragment, _ = runner.sample(T)
    runner.stop()
    assert len(fragment[C.TRUNC_INDEX]) == 4 and len(fragment[C.SEQ_INDEX]) > N
    for name, value in fragment.items():
        column = FRAGMENT[name]
        for leaf in nested.leaves(value):
            if column.layout is Layout.TIME_MAJOR:
                lead = (T, N)
            elif column.layout is Layout.PER_ENV:
                lead = (N,)
            elif column.layout is Layout.ROW_INDEX:
                lead = (len(value), 2)
            else:
                lead = (len(fragment[column.index]),)
            assert leaf.shape[: len(lead)] == lead, name
    assert_same(from_flat(*to_flat(fragment)), fragment)


def test_design_doc_shows_the_schema():
    design = (Path(__file__).parents[2] / "docs" / "design.md").read_text()
    for schema in (FRAGMENT, TRANSITIONS, SEQUENCES):
        assert schema.markdown() in design, f"docs/design.md: update the {schema.kind} table"


def test_keys_that_cannot_be_stored_exactly_are_refused():
    fragment = flat_fragment(2, 1, 0)
    for key in (0, "a/b"):  # JSON would turn 0 into "0"; "/" separates the flat names
        fragment[C.OBS] = {key: np.zeros((2, 1))}
        with pytest.raises(TypeError, match="strings without '/'"):
            to_flat(fragment)
