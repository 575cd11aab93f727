"""Deflated Sharpe ratio, PSR and PBO against the papers' worked numbers (shared/REFERENCES.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptotrade.optimize.statistics import (
    deflated_sharpe_ratio,
    expected_max_standard_normal,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    search_statistics,
)


def test_expected_maximum_of_100_standard_normals():
    assert expected_max_standard_normal(100) == pytest.approx(2.5306028932, abs=1e-9)
    assert expected_max_standard_normal(1) == 0.0


def test_deflated_sharpe_ratio_of_the_papers_example():
    """Bailey & Lopez de Prado 2014: SR 2.5 (annualised, daily), V[SR] 0.5, N 100, T 1,250,
    skew -3, kurtosis 10 -> SR0 = 0.1132 per period, DSR = 0.9004."""
    dsr, sr0 = deflated_sharpe_ratio(
        2.5 / math.sqrt(250), 0.5 / 250, n_trials=100, n_returns=1250, skew=-3.0, kurtosis=10.0
    )
    assert sr0 == pytest.approx(0.11317, abs=5e-6)
    assert dsr == pytest.approx(0.9003968, abs=1e-6)


def test_probabilistic_sharpe_ratio_of_the_efficient_frontier_example():
    """Bailey & Lopez de Prado 2012: SR 1.585 annualised from 24 monthly returns, skew -2.448,
    kurtosis 10.164, benchmark 0 -> PSR = 0.9132."""
    psr = probabilistic_sharpe_ratio(1.585 / math.sqrt(12), 0.0, 24, -2.448, 10.164)
    assert psr == pytest.approx(0.9132343, abs=1e-6)


def test_pbo_of_pure_noise_is_near_one_half():
    rng = np.random.default_rng(0)
    pbo = probability_of_backtest_overfitting(rng.normal(0, 0.01, (1600, 20)), blocks=12)
    assert pbo.splits == math.comb(12, 6) and pbo.blocks == 12
    assert 0.35 < pbo.pbo < 0.65
    assert len(pbo.logits) == pbo.splits


def test_pbo_ranks_like_scipy():
    """The vectorised out-of-sample rank equals scipy's average rank (ties included)."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(3)
    returns = np.round(rng.normal(0, 0.01, (40, 5)), 3)
    returns[:, 4] = returns[:, 3]  # a tie
    result = probability_of_backtest_overfitting(returns, blocks=4)
    import itertools

    parts = np.array_split(np.arange(40), 4)
    expected = []
    for combo in itertools.combinations(range(4), 2):
        rows = np.concatenate([parts[i] for i in combo])
        rest = np.setdiff1d(np.arange(40), rows)
        sharpe = lambda r: r.mean(0) / r.std(0, ddof=1)  # noqa: E731
        best = np.argmax(sharpe(returns[rows]))
        omega = rankdata(sharpe(returns[rest]))[best] / 6.0
        expected.append(np.log(omega / (1 - omega)))
    np.testing.assert_allclose(result.logits, expected, rtol=1e-9)


def test_pbo_of_one_real_edge_among_noise_is_near_zero():
    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.01, (1600, 20))
    returns[:, 7] += 0.004  # a Sharpe of 0.4 per period: in-sample and out-of-sample best
    assert probability_of_backtest_overfitting(returns).pbo < 0.02


def test_pbo_refuses_a_single_candidate():
    with pytest.raises(ValueError, match="2 candidates"):
        probability_of_backtest_overfitting(np.zeros((100, 1)))


def test_search_statistics_aligns_candidates_on_shared_timestamps():
    rng = np.random.default_rng(2)
    times = np.arange("2024-01-01T01", "2024-03-01T01", dtype="datetime64[h]")
    curves = {}
    for k in range(6):
        equity = 1000 * np.cumprod(1 + rng.normal(0.0, 0.01, len(times)))
        curves[f"c{k}"] = (times[k:], equity[k:])  # a longer warm-up starts later
    stats = search_statistics(curves, "c0")
    assert stats.trials == 6 and stats.pbo_blocks == 16
    assert 0.0 <= stats.pbo <= 1.0 and 0.0 <= stats.deflated_sharpe <= 1.0
    assert stats.daily_returns == 60  # the shared days (Jan 1 .. Feb 29)
    assert set(stats.metrics()) >= {"search/deflated_sharpe", "search/pbo"}
    assert "DSR" in stats.report() and "PBO" in stats.report()


def test_every_search_parent_logs_dsr_and_pbo_from_its_children(mlflow_store):
    """The parent reads each child's val/equity.csv (the selected model's validation curve)."""
    import mlflow
    import pandas as pd

    from cryptotrade.optimize.runner import log_search_statistics
    from cryptotrade.optimize.trial import TAG_GENOME, TAG_KIND, open_child_run, point_key

    rng = np.random.default_rng(4)
    times = pd.date_range("2024-01-01 01:00", periods=24 * 40, freq="h")
    points = [{"agent.gamma": g} for g in (0.9, 0.95, 0.99, 0.995)]
    curves = {}
    with mlflow.start_run() as parent:
        for k, point in enumerate(points):
            tags = {TAG_KIND: "tune", TAG_GENOME: point_key(point)}
            run_id = open_child_run(f"c{k}", tags, point)
            equity = 1000 * np.cumprod(1 + rng.normal(0.0002 * k, 0.01, len(times)))
            curves[point_key(point)] = (times.to_numpy(), equity)
            if k < 3:  # the last one was stopped early: tried, but no curve
                frame = pd.DataFrame({"close_time": times, "equity": equity})
                mlflow.MlflowClient().log_text(run_id, frame.to_csv(index=False), "val/equity.csv")
        logged = log_search_statistics(points[2], kind="tune")
    expected = search_statistics({k: curves[k] for k in list(curves)[:3]}, point_key(points[2]), 4)
    assert logged["search/trials"] == 4
    assert logged["search/deflated_sharpe"] == pytest.approx(expected.deflated_sharpe, rel=1e-9)
    assert logged["search/pbo"] == pytest.approx(expected.pbo, rel=1e-9)
    run = mlflow.MlflowClient().get_run(parent.info.run_id)
    assert run.data.metrics["search/pbo"] == pytest.approx(expected.pbo)
    report = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/search/report.txt")
    assert "deflated Sharpe ratio" in report and "probability of backtest overfitting" in report
