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


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data (real Binance 1h) is absent")
def test_walkforward_on_real_binance_1h_rolling_windows(tmp_path, mlflow_uri):
    metrics = _execute(tmp_path, "data=file", "walkforward.train=1500", "walkforward.embargo=5")
    _check_parent_and_folds(mlflow_uri, metrics, folds=3)
