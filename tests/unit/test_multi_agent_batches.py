"""Multi-agent batch plumbing: one-column fragments joined end to end keep GAE exact,
per-key return windows, and the stored form of a lambda policy mapping."""

from __future__ import annotations

import numpy as np
import pytest

from scalerl.algorithms.multi_agent_config import (
    MappingTable,
    decode_multi_agent,
    encode_multi_agent,
)
from scalerl.utils.advantages import compute_gae, next_values_for
from scalerl.utils.batch import concat_columns, per_module
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import KeyedReturns


def column(rewards, terms, truncs, trunc_obs):
    M = len(rewards)
    index = [(t, 0) for t in range(M) if truncs[t]]
    return {
        "obs": np.arange(M, dtype=np.float32)[:, None, None],
        "rewards": np.asarray(rewards, np.float32)[:, None],
        "terminateds": np.asarray(terms)[:, None],
        "truncateds": np.asarray(truncs)[:, None],
        "bootstrap_obs": np.zeros((1, 1), np.float32),
        "trunc_index": np.array(index, np.int64).reshape(-1, 2),
        "trunc_obs": np.asarray(trunc_obs, np.float32).reshape(-1, 1),
    }


def gae(fragment, value=lambda o: 10.0 * o):
    v = value(fragment["obs"][:, 0, 0])[:, None]
    nv = next_values_for(
        v,
        value(fragment["bootstrap_obs"][:, 0]),
        fragment["trunc_index"],
        value(fragment["trunc_obs"][:, 0]),
    )
    return compute_gae(
        fragment["rewards"], v, nv, fragment["terminateds"], fragment["truncateds"], 0.9, 0.8
    )[0][:, 0]


def test_columns_joined_end_to_end_give_each_trajectory_its_own_gae():
    # Runner 1: a trajectory cut at its 2nd step (next obs 7); runner 2: one terminated.
    a = column([1.0, 2.0], [False, False], [False, True], [7.0])
    b = column([3.0, 4.0, 5.0], [False, False, True], [False, False, False], [])
    joined = concat_columns([a, b])
    assert joined["rewards"].shape == (5, 1)
    np.testing.assert_array_equal(joined["trunc_index"], [[1, 0]])
    np.testing.assert_allclose(gae(joined), np.concatenate([gae(a), gae(b)]), rtol=1e-6)
    # By hand for the cut step: delta = r + gamma V(next obs 7) - V(obs 1) = 2 + 63 - 10.
    assert gae(a)[1] == pytest.approx(2.0 + 0.9 * 70.0 - 10.0)


def test_per_module_joins_each_modules_columns():
    a = column([1.0], [True], [False], [])
    b = column([2.0, 3.0], [False, True], [False, False], [])
    out = per_module([{"x": a, "y": b}, {"x": b}])
    assert out["x"]["rewards"][:, 0].tolist() == [1.0, 2.0, 3.0]
    assert out["y"] is b


def test_keyed_returns_window_and_state():
    returns = KeyedReturns(window=2)
    returns.add({"a": [1.0, 2.0, 3.0], 0: [4.0]})
    assert returns.means() == {"a": 2.5, 0: 4.0}
    again = KeyedReturns(window=2)
    again.set_state(returns.get_state())
    assert again.means() == returns.means()


def test_lambda_mapping_is_stored_as_its_table_and_restored():
    fn = lambda aid, ep, **kw: "even" if aid % 2 == 0 else "odd"  # noqa: E731
    stored = encode_multi_agent("policy_mapping_fn", fn, {0: "even", 1: "odd"})
    assert stored == {"__mapping_table__": [[0, "even"], [1, "odd"]]}
    restored = decode_multi_agent("policy_mapping_fn", stored)
    assert isinstance(restored, MappingTable)
    assert restored(1, None) == "odd"
    with pytest.raises(ConfigError, match="Agent 5 was never seen"):
        restored(5, None)
    # An importable function is stored by name.
    named = encode_multi_agent("policy_mapping_fn", np.sign, None)
    assert named == {"__callable__": "numpy:sign"}
