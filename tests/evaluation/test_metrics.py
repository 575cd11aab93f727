"""Metrics against hand-computed values and against empyrical-reloaded / quantstats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptotrade.evaluation import metrics
from cryptotrade.market.records import TRADE_DTYPE


def _hourly(n: int) -> np.ndarray:
    return np.datetime64("2024-01-01T01:00", "ns") + np.arange(n) * np.timedelta64(1, "h")


def _daily(n: int) -> np.ndarray:
    return np.datetime64("2024-01-01T00:00", "ns") + np.arange(n) * np.timedelta64(1, "D")


def test_periods_per_year_from_spacing():
    assert metrics.periods_per_year(_hourly(10)) == pytest.approx(365 * 24)


def test_max_drawdown_peak_to_trough():
    # peak 120 -> trough 90 is -25%; the later fall 110 -> 100 is smaller
    assert metrics.max_drawdown(np.array([100, 120, 90, 110, 100.0])) == pytest.approx(0.25)
    assert metrics.max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0


def test_max_drawdown_duration_in_days():
    # peak on day 1, underwater days 2-4, back at the peak on day 5: 4 days; then a new
    # 2-day spell that never recovers
    eq = np.array([100, 120, 110, 100, 115, 120, 125, 124, 123.0])
    assert metrics.max_drawdown_duration(eq, _daily(9)) == pytest.approx(4.0)
    assert metrics.max_drawdown_duration(np.array([1.0, 2.0, 3.0]), _daily(3)) == 0.0


def test_sharpe_and_sortino_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mean, std = r.mean(), r.std(ddof=1)
    assert metrics.sharpe_ratio(r, 4.0) == pytest.approx(mean / std * 2.0)
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert metrics.sortino_ratio(r, 4.0) == pytest.approx(mean / downside * 2.0)
    assert metrics.sharpe_ratio(np.zeros(5), 4.0) == 0.0
    assert metrics.sortino_ratio(np.array([0.01, 0.02]), 4.0) == np.inf


def test_daily_equity_takes_the_last_mark_of_each_day():
    # hourly marks at close times 01:00 .. 00:00 next day: the mark at midnight closes day 1
    times = _hourly(30)
    eq = 100.0 + np.arange(30.0)
    daily = metrics.daily_equity(eq, times)
    # point 23 is marked at 2024-01-02T00:00, the close of the last bar of Jan 1
    assert list(daily) == [100.0, eq[23], eq[29]]


def _trades() -> np.ndarray:
    t = np.zeros(3, dtype=TRADE_DTYPE)
    t["entry_index"], t["exit_index"] = [0, 5, 9], [4, 9, 10]
    t["pnl"] = [30.0, -10.0, 5.0]
    t["fees"] = [1.0, 2.0, 0.5]
    t["funding"] = [0.5, -0.25, 0.0]
    t["liquidated"] = [False, True, False]
    return t


def test_trade_metrics_by_hand():
    m = metrics.trade_metrics(_trades())
    assert m["num_trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(35.0 / 10.0)
    assert m["expectancy"] == pytest.approx(25.0 / 3)
    assert m["avg_holding_bars"] == pytest.approx((4 + 4 + 1) / 3)
    assert m["fees_paid"] == pytest.approx(3.5)
    assert m["funding_paid"] == pytest.approx(0.25)
    assert m["liquidations"] == 1


def test_performance_costs_exposure_turnover():
    eq = np.array([1000.0, 1010.0, 1030.0, 1025.0])
    perf = metrics.performance(
        eq, _hourly(4), trades=_trades(), position=np.array([0, 1, 1, 0.0]), traded_notional=2050
    )
    assert perf["total_return"] == pytest.approx(0.025)
    assert perf["gross_pnl"] == pytest.approx(25.0 + 3.5 + 0.25)  # net + fees + funding
    assert perf["exposure"] == pytest.approx(2 / 3)
    assert perf["turnover"] == pytest.approx(2050 / eq.mean())
    assert perf["num_trades"] == 3
    # the old call site (no trade log) still works
    assert metrics.performance(eq, _hourly(4), num_trades=2)["num_trades"] == 2


def _daily_path(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.001, 0.03, n)
    equity = 1000.0 * np.cumprod(np.r_[1.0, 1.0 + returns])
    return equity, returns


@pytest.mark.parametrize("seed", [0, 1])
def test_daily_metrics_match_empyrical(seed):
    empyrical = pytest.importorskip("empyrical")
    equity, returns = _daily_path(seed)
    # one mark per day at midnight = the close of each daily bar
    perf = metrics.performance(equity, _daily(len(equity)) + np.timedelta64(1, "D"))
    r = pd.Series(returns, index=pd.date_range("2024-01-02", periods=len(returns), freq="D"))
    assert perf["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=365))
    assert perf["sortino"] == pytest.approx(empyrical.sortino_ratio(r, annualization=365))
    assert perf["volatility"] == pytest.approx(empyrical.annual_volatility(r, annualization=365))
    assert perf["max_drawdown"] == pytest.approx(-empyrical.max_drawdown(r))
    assert perf["cagr"] == pytest.approx(empyrical.cagr(r, annualization=365))
    assert perf["calmar"] == pytest.approx(empyrical.calmar_ratio(r, annualization=365))


def test_daily_metrics_match_quantstats():
    qs = pytest.importorskip("quantstats")
    equity, returns = _daily_path(3)
    perf = metrics.performance(equity, _daily(len(equity)) + np.timedelta64(1, "D"))
    r = pd.Series(returns, index=pd.date_range("2024-01-02", periods=len(returns), freq="D"))
    assert perf["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=365))
    assert perf["max_drawdown"] == pytest.approx(-qs.stats.max_drawdown(r))
    assert perf["total_return"] == pytest.approx(qs.stats.comp(r))


def test_hourly_bars_aggregate_to_daily_returns():
    # 48 hourly bars with a known end-of-day equity: daily returns come from those two marks
    eq = np.r_[100.0, np.linspace(101, 110, 23), 110.0, np.linspace(109, 99, 23), 99.0]
    times = _hourly(len(eq))  # close times 01:00 .. 00:00 (Jan 3)
    daily = metrics.daily_equity(eq, times)
    assert daily[0] == 100.0 and len(daily) == 4  # E0, Jan 1, Jan 2 and the partial Jan 3


def test_log_return_fraction():
    assert metrics.log_return_fraction(np.e - 1, np.e**2 - 1) == pytest.approx(0.5)
    assert np.isnan(metrics.log_return_fraction(0.1, 0.0))


def test_summary_table_from_flat_metrics():
    from cryptotrade.evaluation.report import summary_from_metrics

    flat = {
        "test/total_return": 0.1,
        "test/fees_paid": 12.5,
        "baseline/buy_hold/total_return": 0.05,
        "baseline/random/total_return": -0.2,
        "baseline/random/total_return/std": 0.01,
        "baseline/oracle/sortino": 1.7976931348623157e308,  # MLflow's inf
        "train/loss": 1.0,
    }
    table = summary_from_metrics(flat)
    lines = table.splitlines()
    assert lines[0] == "== test: agent vs baselines =="
    assert [ln.split()[0] for ln in lines[3:-1]] == ["agent", "buy_hold", "random", "oracle"]
    assert "10.00%" in lines[3] and "12.50" in lines[3] and "n/a" in lines[6]
    assert "inf" not in table
    assert summary_from_metrics({"val/sharpe": 1.0}) is None


def test_a_short_split_is_not_annualised_and_tables_show_no_inf():
    """30 days of hourly bars that only rise: the CAGR would be astronomical and the sortino
    infinite; CAGR is the split's return (not annualised), the tables show n/a, no inf."""
    from cryptotrade.evaluation.report import summary_table

    n = 30 * 24
    equity = 1000.0 * np.cumprod(np.r_[1.0, np.full(n, 1.002)])
    perf = metrics.performance(equity, _hourly(n + 1))
    assert perf["annualised"] == 0.0
    assert perf["cagr"] == perf["total_return"] == pytest.approx(1.002**n - 1)
    assert np.isinf(perf["sortino"])
    table = summary_table("test", {"agent": perf})
    assert "inf" not in table and "n/a" in table and "e+" not in table
    # a year or more is annualised
    year = 1000.0 * np.cumprod(np.r_[1.0, np.full(365 * 24, 1.00001)])
    long = metrics.performance(year, _hourly(365 * 24 + 1))
    assert long["annualised"] == 1.0 and long["cagr"] == pytest.approx(1.00001 ** (365 * 24) - 1)


def test_every_summary_ends_with_a_one_line_verdict():
    from cryptotrade.evaluation.report import summary_from_metrics, summary_table

    columns = {
        "agent": {"total_return": -0.1696},
        "buy_hold": {"total_return": 0.1954},
        "flat": {"total_return": 0.0},
        "oracle": {"total_return": 75.2},
    }
    last = summary_table("test", columns).splitlines()[-1]
    assert last == (
        "verdict: agent -16.96 % vs buy & hold +19.54 % (-36.50 pts), flat +0.00 %, oracle +7520 %"
    )
    flat = {"test/total_return": 0.1, "baseline/buy_hold/total_return": 0.05, "seeds/n": 3.0}
    flat |= {"test/total_return/ci_low": -0.02, "test/total_return/ci_high": 0.22}
    assert summary_from_metrics(flat).splitlines()[-1] == (
        "verdict: agent (mean of 3 seeds) +10.00 % vs buy & hold +5.00 % (+5.00 pts); "
        "95 % CI of the mean -2.00 % to +22.00 % (student_t)"
    )
