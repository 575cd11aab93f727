"""The inverse contract on real BitMEX XBTUSD 1m bars and funding (2019), to the satoshi."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_episode

from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BARS = DATA_DIR / "bitmex_XBTUSD_1m_2019.parquet"
FUNDING = DATA_DIR / "bitmex_XBTUSD_funding_2016-05-14_2020-11-05.csv"
FEE = 0.00075  # BitMEX XBTUSD taker fee
SAT = 1e-8


@pytest.fixture(scope="module")
def xbtusd() -> pd.DataFrame:
    if not (BARS.exists() and FUNDING.exists()):
        pytest.skip(f"real data not found under {DATA_DIR} (shared data folder absent)")
    bars = pd.read_parquet(BARS, columns=["timestamp", "open", "high", "low", "close", "volume"])
    # BitMEX labels a bucket by its END; the env's bars are labelled by their open time
    bars.index = (bars.pop("timestamp") - pd.Timedelta(minutes=1)).dt.as_unit("ns")
    funding = pd.read_csv(FUNDING, usecols=["timestamp", "fundingRate"])
    rate = pd.Series(
        funding["fundingRate"].to_numpy(),
        index=pd.to_datetime(funding["timestamp"]).dt.as_unit("ns"),
    )
    # a settlement charges the position held at its time: the bar opening then
    bars["funding_rate"] = rate.reindex(bars.index).fillna(0.0)
    return bars


def market(df: pd.DataFrame, start: str, end: str) -> MarketData:
    df = df.loc[start:end]
    ret = np.log(df["close"]).diff().fillna(0.0).to_numpy(np.float32)[:, None]
    return MarketData(
        "xbtusd2019",
        df.index.tz_convert(None).to_numpy(),
        df["open"].to_numpy(np.float64),
        df["high"].to_numpy(np.float64),
        df["low"].to_numpy(np.float64),
        df["close"].to_numpy(np.float64),
        df["volume"].to_numpy(np.float64),
        ret,
        ("logret",),
        df["funding_rate"].to_numpy(np.float64),
    )


def hold(md: MarketData, action: int, **settings: float) -> tuple[TradingEnv, dict, bool]:
    env = TradingEnv(
        md,
        WeightedReward(),
        EnvSettings(
            window=1,
            action_mode="discrete3",
            contract="inverse",
            initial_cash=1.0,
            taker_fee=FEE,
            slippage_bps=0.0,
            maintenance_margin=0.005,
            liquidation_fee=0.0,
            episode_length=None,
            **settings,
        ),
        evaluation=True,
    )
    episode = run_episode(env, action, seed=0)
    return env, episode.info, episode.terminated


@pytest.mark.parametrize(("action", "side"), [(2, 1.0), (0, -1.0)])
def test_held_inverse_position_to_the_satoshi(
    xbtusd: pd.DataFrame, action: int, side: float
) -> None:
    # BTC went from ~4,100 to ~8,000 over these three months, with funding every 8 hours
    md = market(xbtusd, "2019-04-01", "2019-06-30")
    env, info, term = hold(md, action)
    assert not term
    # oracle: 1 BTC of contracts at the open of bar 1, funding on contracts / open at every later
    # settlement, closed at the last close; fees on both notionals, all in BTC
    entry, last = md.open[1], len(md) - 1
    contracts = side * 1.0 * entry
    funding = np.sum(contracts / md.open[2:] * md.funding_rate[2:])
    fees = abs(contracts) / entry * FEE + abs(contracts) / md.close[last] * FEE
    pnl = contracts * (1 / entry - 1 / md.close[last])
    expected = 1.0 + pnl - funding - fees
    assert round(info["equity"] / SAT) == round(expected / SAT)
    assert info["equity_quote"] == pytest.approx(info["equity"] * md.close[last], rel=1e-15)
    trade = env.trades[0]
    assert len(env.trades) == 1 and trade["size"] == pytest.approx(entry)
    assert round(trade["funding"] / SAT) == round(funding / SAT)
    assert np.count_nonzero(md.funding_rate[2:]) == 3 * 91  # 04, 12, 20 UTC for 91 days
    assert side * funding > 0  # funding was mostly positive in this rally: longs paid


def test_leveraged_inverse_short_liquidated_in_the_2019_rally(xbtusd: pd.DataFrame) -> None:
    md = market(xbtusd, "2019-04-01", "2019-06-30")
    env, info, term = hold(md, 0, leverage=3.0)
    trade = env.trades[-1]
    assert term and trade["liquidated"] and trade["exit_index"] == env.current_index
    n = trade["exit_index"]
    # liquidation price from the balance at that time (fees and funding moved it):
    # balance + u (1/entry - 1/p) = mmr |u| / entry  =>  p = u / (balance + u (1 + mmr) / entry)
    contracts = -3.0 * md.open[1]
    balance = 1.0 - 3.0 * FEE - trade["funding"]
    p_liq = contracts / (balance + contracts * 1.005 / md.open[1])
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)
    assert max(md.open[n], md.high[n]) >= p_liq  # the bar reached it
    # BitMEX's isolated-margin formula entry / (1 - 1/L + mm) is where it lands before funding
    assert p_liq == pytest.approx(md.open[1] / (1 - 1 / 3 + 0.005), rel=0.02)
    # what is left: the maintenance margin on the entry value
    assert round(info["equity"] / SAT) == round(0.005 * abs(contracts) / md.open[1] / SAT)
