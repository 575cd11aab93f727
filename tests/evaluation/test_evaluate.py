"""evaluate_split end to end on a tiny market, without MLflow: metrics, baselines, pictures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cryptotrade.env import CompiledMarket, EnvSettings, TradingEnv
from cryptotrade.evaluation import evaluate_split
from cryptotrade.evaluation.backtest import run_backtest, target_policy
from cryptotrade.evaluation.plots import equity_band_plot
from cryptotrade.evaluation.settings import EvaluationSettings
from tests.env.env_testdata import random_walk

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def evaluation():
    data = random_walk(n=240, n_features=2, seed=11)
    data = replace(data, regime=(np.arange(240) // 60 % 2).astype(np.int8))

    market = CompiledMarket.build(data, settings=EnvSettings(window=8), evaluation=True)

    def make_env() -> TradingEnv:
        return TradingEnv(market=market, evaluation=True)

    def policy(obs, env):
        return 2 if (env.current_index // 20) % 2 else 0

    return evaluate_split(
        policy,
        market,
        prefix="test",
        seed=0,
        settings=EvaluationSettings(random_seeds=[0, 1, 2]),
        regime_names=["calm", "wild"],
        log_to_run=False,
    ), make_env


def test_metric_names_and_comparisons(evaluation):
    ev, _ = evaluation
    m = ev.metrics
    for name in ("buy_hold", "flat", "random", "oracle"):
        assert f"baseline/{name}/sharpe" in m
    assert m["baseline/flat/total_return"] == 0.0 and m["baseline/flat/num_trades"] == 0
    assert m["baseline/random/total_return/std"] > 0.0
    assert m["test/excess_vs_buy_hold"] == pytest.approx(
        m["test/total_return"] - m["baseline/buy_hold/total_return"]
    )
    expected = np.log1p(m["test/total_return"]) / np.log1p(m["baseline/oracle/total_return"])
    assert m["test/return_vs_oracle"] == pytest.approx(expected)
    assert m["baseline/oracle/total_return"] >= m["baseline/buy_hold/total_return"]


def test_regime_returns_compound_to_the_total(evaluation):
    ev, _ = evaluation
    m = ev.metrics
    calm, wild = m["test/regime/calm/return"], m["test/regime/wild/return"]
    assert (1 + calm) * (1 + wild) - 1 == pytest.approx(m["test/total_return"])
    assert m["test/regime/calm/bars"] + m["test/regime/wild/bars"] == len(ev.agent.rewards)


def test_backtest_record_and_costs(evaluation):
    ev, make_env = evaluation
    a = ev.agent
    assert (a.close_times - a.timestamps == np.timedelta64(1, "h")).all()
    m = ev.metrics
    assert m["test/gross_pnl"] == pytest.approx(
        a.equity[-1] - a.equity[0] + a.trades["fees"].sum() + a.trades["funding"].sum()
    )
    # the same replay again gives the same numbers (deterministic)
    again = run_backtest(target_policy(1.0), make_env(), seed=0)
    assert again.metrics == ev.baselines.results["buy_hold"].metrics


def test_pictures_summary_and_report(evaluation):
    ev, _ = evaluation
    assert set(ev.pictures) == {
        "equity.png",
        "drawdown.png",
        "trades.png",
        "position.png",
        "reward_components.png",
    }
    assert all(p.startswith(PNG) for p in ev.pictures.values())
    *table, last = ev.summary.splitlines()
    assert [line.split()[0] for line in table[3:]] == [
        "agent",
        "buy_hold",
        "flat",
        "random",
        "oracle",
    ]
    assert last.startswith("verdict: agent ") and " vs buy & hold " in last and "oracle" in last
    assert ev.html.count("data:image/png;base64,") == 5 and "fees_paid" in ev.html
    band = equity_band_plot([ev.agent, ev.baselines.results["random"]], [0, 1], log_scale=True)
    assert band.startswith(PNG)


class _RecordingModel:
    """Stands in for an SB3 model: records the ``episode_start`` flags ``predict`` receives."""

    def __init__(self) -> None:
        self.starts: list[bool] = []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.starts.append(bool(episode_start[0]))
        return 1, "state"


@pytest.mark.parametrize(("reset_every", "expected"), [(None, [0]), (3, [0, 3, 6])])
def test_model_policy_restarts_the_recurrent_state_every_n_steps(reset_every, expected):
    from cryptotrade.evaluation.backtest import model_policy

    model = _RecordingModel()
    act = model_policy(model, reset_every=reset_every)
    for _ in range(8):
        act(np.zeros(3), None)
    assert [i for i, start in enumerate(model.starts) if start] == expected


def test_money_shows_small_coin_fees():
    from cryptotrade.evaluation.report import fmt, money

    assert fmt("fees_paid", 0.0003) == "0.0003000"  # was 0.00
    assert fmt("expectancy", -0.000123456) == "-0.0001235"
    assert fmt("fees_paid", 1234.5) == "1,234.50" and fmt("gross_pnl", 0.0) == "0.00"
    assert money(12.3456) == "12.35"


def test_an_inverse_contract_reports_money_in_the_coin():
    from cryptotrade.evaluation.report import BASE

    data = random_walk(n=160, n_features=2, seed=3)

    settings = EnvSettings(window=8, contract="inverse")
    market = CompiledMarket.build(data, settings=settings, evaluation=True)
    ev = evaluate_split(
        lambda obs, env: 1, market, prefix="test", seed=0, log_to_run=False,
        settings=EvaluationSettings(
            random_seeds=[0], baselines=["buy_hold", "flat", "random"], plots=False
        ),
    )  # fmt: skip
    assert ev.currency == BASE
    assert f"Cost breakdown ({BASE})" in ev.html and "quote currency" not in ev.html
