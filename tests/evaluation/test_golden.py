"""A stored golden table: the full statistics of a fixed market, seed and action sequence.

Any change to fills, fees, funding, the trade log or a metric shows up here as a named
difference. To regenerate after an intended change (and say why in the commit):
``python -m tests.evaluation.test_golden``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptotrade.env import CompiledMarket, EnvSettings, TradingEnv
from cryptotrade.evaluation.backtest import run_backtest
from tests.env.env_testdata import random_walk

GOLDEN = Path(__file__).parent / "golden" / "backtest_stats.json"
CASES = {
    "linear": {"window": 8},
    "inverse": {"window": 8, "contract": "inverse"},
    "leveraged": {"window": 8, "leverage": 3.0},
}


def actions(step: int) -> int:
    """A fixed discrete3 sequence (0 short, 1 flat, 2 long) with holds of varying length."""
    cycle = [2, 2, 2, 1, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2, 1, 1, 0]
    return cycle[step % len(cycle)]


def stats(case: str) -> dict[str, float]:
    """The full metric set of the fixed action sequence on the fixed market."""
    data = random_walk(n=300, n_features=2, seed=7)
    env = TradingEnv(data, settings=EnvSettings(**CASES[case]), evaluation=True)
    steps = iter(range(10**6))
    result = run_backtest(lambda obs, env: actions(next(steps)), env, seed=0)
    return {k: float(v) for k, v in result.metrics.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_full_stats_match_the_golden_table(case):
    golden = json.loads(GOLDEN.read_text())[case]
    now = stats(case)
    assert sorted(now) == sorted(golden), "the metric set changed"
    for key, value in golden.items():
        assert now[key] == pytest.approx(value, rel=1e-8, abs=1e-12), key
    assert now["num_trades"] >= 5 and now["fees_paid"] > 0.0  # the sequence trades


def test_equity_and_trade_timestamps_never_go_back(mlflow_store):
    """equity.csv and trades.csv as logged: times non-decreasing, every trade exits after entry."""
    import mlflow

    from cryptotrade.evaluation import evaluate_split
    from cryptotrade.evaluation.settings import EvaluationSettings

    data = random_walk(n=300, n_features=2, seed=7)
    steps = iter(range(10**6))
    with mlflow.start_run() as run:
        evaluate_split(
            lambda obs, env: actions(next(steps)),
            CompiledMarket.build(data, settings=EnvSettings(window=8), evaluation=True),
            prefix="test", seed=0,
            settings=EvaluationSettings(
                random_seeds=[0], baselines=["buy_hold", "flat", "random"], plots=False,
                report=False,
            ),
        )  # fmt: skip
    uri = f"runs:/{run.info.run_id}/test"
    equity = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"{uri}/equity.csv")))
    trades = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"{uri}/trades.csv")))
    assert len(trades) >= 5
    for frame, column in ((equity, "open_time"), (equity, "close_time"), (trades, "exit_time")):
        times = pd.to_datetime(frame[column])
        assert times.is_monotonic_increasing, column
    assert (pd.to_datetime(trades["entry_time"]) <= pd.to_datetime(trades["exit_time"])).all()
    assert np.all(trades["entry_index"] <= trades["exit_index"])


if __name__ == "__main__":  # regenerate the golden table
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({c: stats(c) for c in sorted(CASES)}, indent=1, sort_keys=True))
    print(f"wrote {GOLDEN}")
