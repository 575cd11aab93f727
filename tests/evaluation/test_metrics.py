"""Hand-computed oracles for the backtest metrics."""

from __future__ import annotations

import numpy as np
import pytest

from cryptotrade.evaluation import metrics


def _hourly(n: int) -> np.ndarray:
    return np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")


def test_periods_per_year_from_spacing():
    assert metrics.periods_per_year(_hourly(10)) == pytest.approx(365 * 24)


def test_max_drawdown_peak_to_trough():
    # peak 120 -> trough 90 is -25%; the later fall 110 -> 100 is smaller
    assert metrics.max_drawdown(np.array([100, 120, 90, 110, 100.0])) == pytest.approx(0.25)
    assert metrics.max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0


def test_sharpe_and_sortino_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mean, std = r.mean(), r.std(ddof=1)
    assert metrics.sharpe_ratio(r, 4.0) == pytest.approx(mean / std * 2.0)
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert metrics.sortino_ratio(r, 4.0) == pytest.approx(mean / downside * 2.0)
    assert metrics.sharpe_ratio(np.zeros(5), 4.0) == 0.0


def test_performance_total_return_and_trades():
    perf = metrics.performance(np.array([100.0, 110.0, 99.0]), _hourly(3), num_trades=2)
    assert perf["total_return"] == pytest.approx(-0.01)
    assert perf["max_drawdown"] == pytest.approx(0.1)
    assert perf["num_trades"] == 2
    assert perf["final_equity"] == 99.0
