"""task=walkforward: one nested run per fold, selection on val only, stitched OOS curve logged."""

from __future__ import annotations

import io
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.evaluation.backtest import BacktestResult
from cryptotrade.evaluation.walkforward import stitch
from cryptotrade.run import execute

register_configs()
FOLDS = ["walkforward.folds=3", "walkforward.test=300", "walkforward.val=200"]
TINY = ["debug=default", "train.total_timesteps=512", "train.eval_freq=256", "env.n_envs=2"]


def _execute(tmp_path, *overrides: str) -> dict[str, float]:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["task=walkforward", *TINY, *FOLDS, *overrides])
    return execute(cfg, output_dir=tmp_path / "out", choices={"agent": "ppo"})


def _result(equity: list[float], start: str) -> BacktestResult:
    ts = pd.date_range(start, periods=len(equity), freq="h").to_numpy()
    eq = np.asarray(equity, dtype=np.float64)
    n = len(eq)
    return BacktestResult(
        timestamps=ts,
        close_times=ts + np.timedelta64(1, "h"),
        index=np.arange(n),
        equity=eq,
        position=np.zeros(n),
        units=np.zeros(n),
        rewards=np.zeros(n - 1),
        components=np.zeros((n - 1, 1)),
        trades=np.array([]),
        metrics={},
    )


def test_stitch_compounds_fold_returns_and_keeps_each_bar_once():
    a = _result([100.0, 110.0, 121.0], "2024-01-01")
    b = _result([1000.0, 900.0], "2024-01-01 03:00")
    curve = stitch([a, b], initial_cash=50.0)
    # fold 0 grows x1.21; fold 1 falls 10 %: one account that restarts flat at each boundary
    np.testing.assert_allclose(curve["equity"], [50.0, 55.0, 60.5, 54.45])
    assert curve["fold"].tolist() == [0, 0, 0, 1]
    assert curve["date"].is_monotonic_increasing


def _check_parent_and_folds(uri: str, metrics: dict[str, float], folds: int) -> None:
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("cryptotrade").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert len(children) == folds
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    keys = ("test/total_return", "test/sharpe", "walkforward/total_return/mean")
    for key in (*keys, "baseline/buy_hold/total_return"):
        assert key in parent.data.metrics, key
        assert np.isfinite(metrics[key])
    splits = {}
    for child in children:
        assert child.info.status == "FINISHED"
        assert "test/total_return" in child.data.metrics
        assert "val/sharpe" in child.data.metrics
        fold = int(child.data.tags["fold"])
        text = mlflow.artifacts.load_text(f"runs:/{child.info.run_id}/data/splits.json")
        splits[fold] = {
            k: (pd.Timestamp(v["start"]), pd.Timestamp(v["end"]))
            for k, v in json.loads(text).items()
        }
        # a fold's model is usable from its URI: config and the fold's normaliser are logged
        names = {f.path for f in client.list_artifacts(child.info.run_id, "data")}
        assert "data/normaliser.json" in names
    for k in range(folds):
        s = splits[k]
        # selection reads only bars before the fold's test block; test blocks follow each other
        assert s["train"][1] < s["val"][0] <= s["val"][1] < s["test"][0]
        if k:
            assert splits[k - 1]["test"][1] < s["test"][0]
    names = {f.path for f in client.list_artifacts(parent.info.run_id, "walkforward")}
    assert {"walkforward/equity.csv", "walkforward/equity.png"} <= names
    csv = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/walkforward/equity.csv")
    curve = pd.read_csv(io.StringIO(csv))
    assert sorted(curve["fold"].unique()) == list(range(folds))
    held = curve["buy_hold"].iloc[-1] / curve["buy_hold"].iloc[0] - 1
    assert held == pytest.approx(metrics["baseline/buy_hold/total_return"], rel=1e-9, abs=1e-12)
    assert pd.to_datetime(curve["date"]).is_monotonic_increasing
    total = curve["equity"].iloc[-1] / curve["equity"].iloc[0] - 1
    assert total == pytest.approx(metrics["test/total_return"], rel=1e-9, abs=1e-12)
    mean = np.mean([c.data.metrics["test/total_return"] for c in children])
    assert metrics["walkforward/total_return/mean"] == pytest.approx(mean)


@pytest.mark.slow
def test_walkforward_synthetic_nested_folds_and_stitched_curve(tmp_path, mlflow_uri):
    metrics = _execute(tmp_path)
    _check_parent_and_folds(mlflow_uri, metrics, folds=3)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data (real Binance 1h) is absent")
def test_walkforward_on_real_binance_1h_rolling_windows(tmp_path, mlflow_uri):
    metrics = _execute(tmp_path, "data=file", "walkforward.train=1500", "walkforward.embargo=5")
    _check_parent_and_folds(mlflow_uri, metrics, folds=3)


def _fold(equity, start, trades, turnover=0.0, position=None):
    from cryptotrade.evaluation.walkforward import FoldResult
    from cryptotrade.market.records import TRADE_DTYPE

    res = _result(equity, start)
    log = np.zeros(len(trades), dtype=TRADE_DTYPE)
    for i, (entry, exit_, pnl, fees, funding) in enumerate(trades):
        log[i] = (entry, exit_, 0, 0, 1, 1.0, 1.0, 1.0, fees, funding, pnl, False)
    pos = np.asarray(position if position is not None else np.zeros(len(equity)), float)
    res = BacktestResult(**(res.__dict__ | {"trades": log, "position": pos}))
    res.metrics.update(turnover=turnover, fees_paid=float(log["fees"].sum()))
    return FoldResult(0, {}, res, res)


def test_parent_costs_and_trade_stats_come_from_the_folds_trades():
    """Hand-added: fold 0 ends where it started (scale 1 for fold 1), so the parent's costs are
    the folds' sums; before, fees, win rate, profit factor, exposure and turnover were 0."""
    from cryptotrade.evaluation.walkforward import aggregate

    a = _fold(
        [1000.0, 1010.0, 1000.0], "2024-01-01", [(0, 2, 20.0, 3.0, 1.0), (2, 3, -20.0, 4.0, 0.0)],
        turnover=2.0, position=[0.0, 1.0, 0.0],
    )  # fmt: skip
    b = _fold(
        [1000.0, 990.0, 1050.0], "2024-01-01 03:00", [(5, 9, 50.0, 5.0, -2.0)],
        turnover=1.0, position=[0.0, -1.0, 1.0],
    )  # fmt: skip
    curve = stitch([a.test, b.test], initial_cash=1000.0)
    m = aggregate([a, b], curve)
    assert m["test/fees_paid"] == pytest.approx(3.0 + 4.0 + 5.0)
    assert m["test/funding_paid"] == pytest.approx(1.0 + 0.0 - 2.0)
    assert m["test/num_trades"] == 3 and m["walkforward/fees_paid/sum"] == 12.0
    assert m["test/win_rate"] == pytest.approx(2 / 3)
    assert m["test/profit_factor"] == pytest.approx((20.0 + 50.0) / 20.0)
    assert m["test/expectancy"] == pytest.approx(50.0 / 3)
    assert m["test/avg_holding_bars"] == pytest.approx((2 + 1 + 4) / 3)
    # net +50 over the folds, plus 12 of fees and -1 of funding paid
    assert m["test/gross_pnl"] == pytest.approx(50.0 + 12.0 - 1.0)
    assert m["test/exposure"] == pytest.approx(3 / 4)  # 4 steps, 3 end in a position
    notional = 2.0 * np.mean([1000.0, 1010.0, 1000.0]) + 1.0 * np.mean([1000.0, 990.0, 1050.0])
    assert m["test/turnover"] == pytest.approx(notional / curve["equity"].mean())


def test_a_later_fold_is_scaled_by_the_stitched_account():
    from cryptotrade.evaluation.walkforward import aggregate

    a = _fold([1000.0, 1100.0], "2024-01-01", [(0, 1, 100.0, 1.0, 0.0)])
    b = _fold([1000.0, 1000.0], "2024-01-01 02:00", [(3, 4, 0.0, 2.0, 0.0)])
    m = aggregate([a, b], stitch([a.test, b.test], initial_cash=1000.0))
    assert m["test/fees_paid"] == pytest.approx(1.0 + 2.0 * 1.1)  # fold 1 trades 1,100


@pytest.mark.skipif(not (SHARED_DATA / "binance_spot_BTCUSDT_1h.parquet").exists(), reason="data")
def test_debug_walkforward_folds_fit_the_debug_bars():
    """``debug=default task=walkforward data=file``: the folds fit the 4,000 debug bars (the
    defaults, 4 x (1,000 + 500) bars, did not)."""
    from cryptotrade.components import build
    from cryptotrade.data.dataset import build_folds
    from cryptotrade.data.splits import WalkForward

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["debug=default", "task=walkforward", "data=file"])
    comps = build(cfg)
    wf = cfg.walkforward
    splitter = WalkForward(folds=wf.folds, test=wf.test, val=wf.val, train=wf.train)
    folds = build_folds(comps.data, comps.features, splitter)
    assert len(folds) == 2 and all(len(f.test) == wf.test for f in folds)
    assert len(folds[0].train) > comps.env.window + cfg.env.episode_length
