"""Statistics over seeds against hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pytest

from cryptotrade.evaluation.seeds import (
    aggregate_seeds,
    bootstrap_ci,
    confidence_interval,
    describe,
    interquartile_mean,
)


def test_interquartile_mean_drops_the_outer_quarters():
    # 8 values: the middle four are 3, 4, 5, 6
    assert interquartile_mean(np.array([100.0, 1, 2, 3, 4, 5, 6, -50])) == pytest.approx(3.5)


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    values = np.array([0.1, 0.3, -0.2, 0.25, 0.05])
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert values.min() <= low and high <= values.max()
    assert bootstrap_ci(values) == (low, high)  # fixed generator
    assert bootstrap_ci(np.array([0.2, 0.2, 0.2])) == (0.2, 0.2)
    assert all(np.isnan(bootstrap_ci(np.array([0.3]))))


def test_aggregate_names_and_values():
    per_seed = [
        {"test/total_return": r, "test/sharpe": s, "baseline/flat/total_return": 0.0}
        for r, s in ((0.1, 1.0), (0.2, 2.0), (0.3, 3.0), (0.6, np.inf))
    ]
    out = aggregate_seeds(per_seed)
    assert out["test/total_return"] == out["test/total_return/mean"] == pytest.approx(0.3)
    assert out["test/total_return/iqm"] == pytest.approx(0.25)
    assert out["test/total_return/std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.6], ddof=1))
    assert out["test/total_return/ci_low"] < 0.3 < out["test/total_return/ci_high"]
    assert out["test/sharpe/mean"] == pytest.approx(2.0)  # the infinite seed is left out
    assert not any(k.startswith("baseline/") for k in out)


def test_few_seeds_get_a_student_t_interval_wider_than_their_range():
    """Three seeds: the percentile bootstrap gave exactly their range; Student t does not."""
    values = np.array([0.1, 0.4, 0.2])
    low, high, method = confidence_interval(values)
    assert method == "student_t"
    half = 4.30265273 * values.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert (low, high) == pytest.approx((values.mean() - half, values.mean() + half), rel=1e-8)
    assert low < values.min() and high > values.max()
    out = aggregate_seeds([{"test/total_return": v} for v in values])
    assert out["test/total_return/ci_low"] == pytest.approx(low, rel=1e-12)


def test_ten_seeds_get_the_bootstrap():
    values = np.linspace(-0.1, 0.3, 10)
    low, high, method = confidence_interval(values)
    assert method == "percentile_bootstrap" and (low, high) == bootstrap_ci(values)


def test_fewer_than_five_seeds_warn_and_the_method_is_named(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="cryptotrade.evaluation.seeds"):
        text = describe(3)
    assert "Student t" in text and "only 3 seeds" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cryptotrade.evaluation.seeds"):
        assert "percentile bootstrap" in describe(12)
    assert not caplog.text
