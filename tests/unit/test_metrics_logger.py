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


def test_runner_exports_merge_as_if_one_logger_got_every_value():
    """Two EnvRunners' exports merged in the driver: mean over all values (not the mean of
    the two means), sum of sums, min/max, and a window over the latest values."""
    driver, r1, r2 = MetricsLogger(), MetricsLogger(), MetricsLogger()
    for v in (1.0, 2.0, 3.0):
        r1.log_value("len", v)
        r1.log_value("n", 1, reduce="sum")
        r1.log_value("last", v, reduce="max", window=2)
    r2.log_value("len", 10.0)
    r2.log_value("n", 1, reduce="sum")
    r2.log_value("per_sample", 5.0, reduce="sum", clear_on_reduce=True)
    for runner in (r1, r2):
        driver.merge(runner.export(), prefix=("env_runners",))
    out = driver.reduce()["env_runners"]
    assert out["len"] == 4.0 and out["n"] == 4 and out["last"] == 3.0 and out["per_sample"] == 5
    assert r2.peek("per_sample") != r2.peek("per_sample")  # cleared by the export (NaN)
    assert r1.export() == []  # nothing new since
    r1.log_value("n", 1, reduce="sum")
    driver.merge(r1.export(), prefix=("env_runners",))
    again = driver.reduce()["env_runners"]
    assert again["n"] == 5 and math.isnan(again["per_sample"])
    with pytest.raises(ValueError, match="one window"):
        driver.merge([(("len",), "mean", 3, False, [1.0])], prefix=("env_runners",))
