"""The env on real Binance BTCUSDT perpetual bars and funding: held-position oracles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_episode

from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BARS = DATA_DIR / "binance_usdm_BTCUSDT_perp_1h.parquet"
FUNDING = DATA_DIR / "binance_usdm_BTCUSDT_funding_8h.parquet"
FEE = 0.0004


@pytest.fixture(scope="module")
def perp() -> pd.DataFrame:
    if not (BARS.exists() and FUNDING.exists()):
        pytest.skip(f"real data not found under {DATA_DIR} (shared data folder absent)")
    bars = pd.read_parquet(BARS).set_index("date")
    funding = pd.read_parquet(FUNDING).set_index("date")["open"].rename("funding_rate")
    bars.index = bars.index.as_unit("ns")
    funding.index = funding.index.as_unit("ns")
    return bars.join(funding, how="left").fillna({"funding_rate": 0.0})


def market(perp: pd.DataFrame, start: str, end: str) -> MarketData:
    df = perp.loc[start:end]
    ret = np.log(df["close"]).diff().fillna(0.0).to_numpy(np.float32)[:, None]
    return MarketData(
        "perp2023",
        df.index.tz_convert(None).to_numpy(),
        df["open"].to_numpy(),
        df["high"].to_numpy(),
        df["low"].to_numpy(),
        df["close"].to_numpy(),
        df["volume"].to_numpy(),
        ret,
        ("logret",),
        df["funding_rate"].to_numpy(),
    )


def hold(md: MarketData, action: int, **settings: float) -> tuple[TradingEnv, dict, bool, bool]:
    """Repeat ``action`` over the whole split with fees but no slippage; the last step's result."""
    env = TradingEnv(
        md,
        WeightedReward(),
        EnvSettings(
            window=24,
            action_mode="discrete3",
            taker_fee=FEE,
            slippage_bps=0.0,
            maintenance_margin=0.004,
            episode_length=None,
            **settings,
        ),
        evaluation=True,
    )
    episode = run_episode(env, action, seed=0)
    return env, episode.info, episode.terminated, episode.truncated


@pytest.mark.parametrize(
    ("action", "side", "start", "end", "days"),
    [(2, 1.0, "2023-01-01", "2023-12-31", 365), (0, -1.0, "2023-04-01", "2023-09-30", 183)],
)
def test_held_position_to_the_cent(
    perp: pd.DataFrame, action: int, side: float, start: str, end: str, days: int
) -> None:
    md = market(perp, start, end)
    env, info, term, trunc = hold(md, action, leverage=1.0)
    assert trunc and not term
    # oracle: enter at the open of bar 24, hold, pay/receive funding at every later settlement,
    # exit at the last close; fees on both notionals
    entry_bar, last = 24, len(md) - 1
    units = side * 10_000.0 / md.open[entry_bar]
    funding = np.sum(units * md.open[entry_bar + 1 :] * md.funding_rate[entry_bar + 1 :])
    fees = 10_000.0 * FEE + abs(units) * md.close[last] * FEE
    expected = 10_000.0 + units * (md.close[last] - md.open[entry_bar]) - funding - fees
    assert round(info["equity"], 2) == round(expected, 2)
    trade = env.trades[0]
    assert len(env.trades) == 1 and trade["side"] == side
    assert round(trade["funding"], 2) == round(funding, 2)
    settlements = np.count_nonzero(md.funding_rate[entry_bar + 1 :])
    assert 3 * (days - 2) <= settlements <= 3 * days  # funding every 8 hours
    assert side * funding > 0  # funding was mostly positive: longs paid, shorts received


def test_short_through_2023_is_liquidated(perp: pd.DataFrame) -> None:
    # BTC rose ~150% in 2023: a 1x short must be liquidated, at its liquidation price
    md = market(perp, "2023-01-01", "2023-12-31")
    env, info, term, _ = hold(md, 0, liquidation_fee=0.002)
    trade = env.trades[-1]
    assert term and trade["liquidated"] and trade["exit_index"] == env.current_index
    assert md.high[trade["exit_index"]] >= trade["exit_price"] >= md.low[trade["exit_index"]]
    # liquidation price from the balance at that time (funding received raised it):
    # balance + units * (p - entry) = 0.4% * |units| * p
    units = -10_000.0 / trade["entry_price"]
    balance = 10_000.0 * (1 - FEE) - trade["funding"]
    p_liq = (units * trade["entry_price"] - balance) / (units * 1.004)
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)
    assert trade["funding"] < 0  # the short received funding all year
    notional = abs(units) * p_liq
    # what is left: the maintenance margin minus the liquidation fee
    assert round(info["equity"], 2) == round(0.004 * notional - 0.002 * notional, 2)
