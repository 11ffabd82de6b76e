"""MetricsLogger: RLlib's `log_value` reduce rules, windows and nested keys."""

import math

import pytest

from scalerl.callbacks import MetricsLogger


def test_reduce_rules_windows_and_nesting():
    m = MetricsLogger()
    for v in (1.0, 2.0, 6.0):
        m.log_value("mean", v)
        m.log_value(("custom", "total"), v, reduce="sum")
        m.log_value("custom/last_two_max", v, reduce="max", window=2)
        m.log_value("lo", v, reduce="min")
        m.log_value("per_iter", v, reduce="sum", clear_on_reduce=True)
    out = m.reduce()
    assert out["mean"] == 3.0 and out["lo"] == 1.0 and out["per_iter"] == 9.0
    assert out["custom"] == {"total": 9.0, "last_two_max": 6.0}
    m.log_value("custom/total", 1.0, reduce="sum")
    again = m.reduce()
    assert again["custom"]["total"] == 10.0  # a lifetime sum
    assert math.isnan(again["per_iter"])  # cleared by the last reduce, nothing logged since
    assert m.peek("custom/last_two_max") == 6.0 and m.peek("missing", 0) == 0


def test_bad_arguments_say_what_is_valid():
    m = MetricsLogger()
    with pytest.raises(ValueError, match="reduce"):
        m.log_value("x", 1.0, reduce="median")
    with pytest.raises(ValueError, match="window"):
        m.log_value("x", 1.0, window=0)
    m.log_value("x", 1.0)
    with pytest.raises(ValueError, match="reduce='mean'"):
        m.log_value("x", 1.0, reduce="sum")
    with pytest.raises(ValueError, match="non-empty"):
        m.log_value("", 1.0)
