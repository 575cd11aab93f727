"""Liquidation on the mark's own high/low (mark candles), hand-computed and against a plain-Python
re-implementation of the leveraged market model.

With mark candles (``MarketData.mark_high``/``mark_low``) a long is liquidated on the bar whose
mark low reaches its liquidation price, a short on the bar whose mark high does; with mark closes
only the mark is taken to move linearly between closes, so a spike that reverts by the close is
missed (the convention documented in :func:`cryptotrade.env.compiled.price_rows`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_episode
from env_testdata import bars, random_walk

from cryptotrade.data.market_data import MARK_COLUMNS, MarketData
from cryptotrade.data.sources import FileSource
from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward
from cryptotrade.env.compiled import price_rows
from cryptotrade.env.core import ROW_MARK_HIGH, ROW_MARK_LOW, ROW_MARK_OPEN

HOLD, LONG, SHORT, CLOSE = 0, 1, 2, 3


def with_marks(data: MarketData, close, high=None, low=None) -> MarketData:
    """``data`` with mark closes, and mark candles' high/low when given."""
    arrays = [None if v is None else np.asarray(v, dtype=np.float64) for v in (close, high, low)]
    return dataclasses.replace(data, mark_price=arrays[0], mark_high=arrays[1], mark_low=arrays[2])


def make_env(data: MarketData, contract: str, **kw) -> TradingEnv:
    base = dict(
        window=1,
        action_mode="discrete4",
        contract=contract,
        initial_cash=1.0 if contract == "inverse" else 10_000.0,
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=10.0,
        maintenance_margin=0.005,
        liquidation_fee=0.0,
        episode_length=None,
    )
    base.update(kw)
    env = TradingEnv(data, WeightedReward(), EnvSettings(**base), evaluation=True)
    env.reset(seed=0)
    return env


def run(env: TradingEnv, actions: list[int]) -> tuple[int, bool]:
    """Step ``actions`` from bar 0 (``window=1``); return the bar the episode ended on (or the
    last one stepped to) and whether it terminated."""
    for n, a in enumerate(actions, start=1):
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            return n, term
    return len(actions), False


# 10x at 10,000 with mmr 0.5 %: linear long 90,000 / 9.95 = 9,045.23, inverse long
# 10,000 / 1.095 = 9,132.42; linear short 110,000 / 10.05 = 10,945.27, inverse short
# 10,000 / 0.905 = 11,049.72
P_LIQ = {
    ("linear", 1): 90_000 / 9.95,
    ("inverse", 1): 10_000 / 1.095,
    ("linear", -1): 110_000 / 10.05,
    ("inverse", -1): 10_000 / 0.905,
}


@pytest.mark.parametrize("contract", ["linear", "inverse"])
def test_a_long_is_liquidated_on_the_bar_the_mark_low_touches_its_price(contract: str) -> None:
    # traded prices never come near; the mark closes 10,000, 10,000, 9,900, 9,100, 9,000:
    # interpolated, bar 2's mark range is [9,900, 10,000] and the liquidation price is first
    # crossed in bar 3 (9,900 -> 9,100) for the inverse long, bar 4 (9,100 -> 9,000) for the
    # linear one; the mark candle of bar 2 wicks to 9,000, through both
    traded = bars([10_000] * 6, [10_000] * 6)
    closes = [10_000, 10_000, 9_900, 9_100, 9_000, 9_000]
    lows = [10_000, 10_000, 9_000, 9_100, 9_000, 9_000]
    highs = [10_000, 10_000, 9_950, 9_900, 9_100, 9_000]
    p_liq = P_LIQ[contract, 1]
    assert min(closes[:3]) > p_liq > lows[2]  # the touch is the candle's, not the closes'

    candles = make_env(with_marks(traded, closes, highs, lows), contract)
    assert run(candles, [LONG] + [HOLD] * 4) == (2, True)
    trade = candles.trades[0]
    assert trade["liquidated"] and trade["exit_index"] == 2
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)

    # mark closes only: the documented interpolation liquidates 1-2 bars later
    interpolated = make_env(with_marks(traded, closes), contract)
    later = 3 if contract == "inverse" else 4
    assert run(interpolated, [LONG] + [HOLD] * 4) == (later, True)
    assert interpolated.trades[0]["exit_index"] == later


@pytest.mark.parametrize("contract", ["linear", "inverse"])
def test_a_short_is_liquidated_on_the_bar_the_mark_high_touches_its_price(contract: str) -> None:
    # the mirror image: the mark closes 10,000, 10,000, 10,100, 10,960, 11,100; bar 2's mark
    # candle spikes to 11,200 and comes back
    traded = bars([10_000] * 6, [10_000] * 6)
    closes = [10_000, 10_000, 10_100, 10_960, 11_100, 11_100]
    highs = [10_000, 10_000, 11_200, 10_960, 11_100, 11_100]
    lows = [10_000, 10_000, 10_000, 10_100, 10_960, 11_100]
    p_liq = P_LIQ[contract, -1]
    assert max(closes[:3]) < p_liq < highs[2]

    candles = make_env(with_marks(traded, closes, highs, lows), contract)
    assert run(candles, [SHORT] + [HOLD] * 4) == (2, True)
    trade = candles.trades[0]
    assert trade["liquidated"] and trade["side"] == -1 and trade["exit_index"] == 2
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)

    interpolated = make_env(with_marks(traded, closes), contract)
    later = 3 if contract == "linear" else 4  # 10,960 > 10,945 (linear); 11,100 > 11,050
    assert run(interpolated, [SHORT] + [HOLD] * 4) == (later, True)


def test_the_mark_rows_by_what_the_data_carries() -> None:
    traded = bars([100.0, 101, 102], [101.0, 102, 103], high=[105.0] * 3, low=[95.0] * 3)
    rows = price_rows(traded)  # no marks: the traded open, low and high
    assert rows[ROW_MARK_LOW].tolist() == [95.0] * 3 and rows[ROW_MARK_OPEN].tolist() == [
        100,
        101,
        102,
    ]
    rows = price_rows(with_marks(traded, [100.0, 99.0, 104.0]))  # closes: their range
    assert rows[ROW_MARK_OPEN].tolist() == [100.0, 100.0, 99.0]
    assert rows[ROW_MARK_LOW].tolist() == [100.0, 99.0, 99.0]
    assert rows[ROW_MARK_HIGH].tolist() == [100.0, 100.0, 104.0]
    # candles: their own low/high; a bar without a candle range (high = low = close) keeps the
    # closes' range
    rows = price_rows(with_marks(traded, [100.0, 99.0, 104.0], [101, 99, 104], [97, 99, 104]))
    assert rows[ROW_MARK_LOW].tolist() == [97.0, 99.0, 99.0]
    assert rows[ROW_MARK_HIGH].tolist() == [101.0, 100.0, 104.0]
    with pytest.raises(ValueError, match="mark_high and mark_low come together"):
        with_marks(traded, [100.0, 99.0, 104.0], [101, 99, 104])
    with pytest.raises(ValueError, match="only with mark_price"):
        dataclasses.replace(traded, mark_high=np.ones(3), mark_low=np.ones(3))


# ------------------------------------------------------------------ independent re-implementation
def reference(data: MarketData, actions: np.ndarray, s: EnvSettings) -> tuple[list, list]:
    """The env's market model for ``discrete4`` in plain Python, from the documented rules and
    the exchanges' formulas, none of the env's code: equity after every step and the trades
    ``(exit bar, side, liquidated)``. Marks: funding at the mark at the open (the previous
    close); liquidation on the mark's own low (long) / high (short) in each bar, widened to the
    two closes, or with mark closes only on the mark moving linearly between them; fills at the
    traded open plus slippage."""
    inverse = s.contract == "inverse"
    lev, mmr, fee, liq_fee, bps = (
        s.leverage,
        s.maintenance_margin,
        s.taker_fee,
        s.liquidation_fee,
        s.slippage_bps,
    )

    def value(units: float, price: float) -> float:
        return units / price if inverse else units * price

    def pnl(units: float, entry: float, price: float) -> float:
        return units * (1.0 / entry - 1.0 / price) if inverse else units * (price - entry)

    def liq_price(units: float, entry: float, balance: float) -> float:
        side = 1.0 if units > 0 else -1.0
        if inverse:
            den = balance + units * (1.0 - side * mmr) / entry
            if (units > 0 and den <= 0) or (units < 0 and den >= 0):
                return math.inf
            return units / den
        return (units * entry - balance) / (units * (1.0 - side * mmr))

    mark = data.mark_price
    balance, units, entry = s.initial_cash, 0.0, 0.0
    equity, trades = [], []
    for n, a in enumerate(actions, start=s.window):
        m_open = mark[n - 1]
        m_low, m_high = min(m_open, mark[n]), max(m_open, mark[n])  # closes only: linear
        if data.mark_low is not None:  # candles: their own low/high
            m_low, m_high = min(data.mark_low[n], m_low), max(data.mark_high[n], m_high)
        target = math.nan
        if a == LONG and units == 0:
            target = 1.0
        elif a == SHORT and units == 0:
            target = -1.0
        elif a == CLOSE and units != 0:
            target = 0.0
        if s.funding and units != 0 and data.funding_rate[n] != 0:
            balance -= value(units, m_open) * data.funding_rate[n]
        liq_at = math.nan  # the execution price of a liquidation in this step
        for check in ("open", "bar"):
            if check == "bar" and math.isnan(liq_at) and not math.isnan(target):
                ref = data.open[n]
                eq = balance + (pnl(units, entry, ref) if units else 0.0)
                size = target * lev * eq  # x price (inverse contracts) or / price (linear units)
                direction = np.sign((size * ref if inverse else size / ref) - units)
                px = ref + direction * ref * bps * 1e-4
                new = size * px if inverse else size / px
                if eq > 0 and direction != 0 and np.sign(new - units) == direction:
                    balance -= abs(value(new - units, px)) * fee
                    if units != 0:  # discrete4 only closes (it opens from flat only)
                        balance += pnl(units, entry, px)
                        trades.append((n, 1 if units > 0 else -1, False))
                    units, entry = new, (px if new != 0 else 0.0)
            if units == 0 or not math.isnan(liq_at):
                continue
            p = liq_price(units, entry, balance)
            if units > 0 and p > 0:
                if m_open <= p:
                    liq_at = m_open
                elif check == "bar" and m_low <= p:
                    liq_at = p
            elif units < 0:
                if m_open >= p:
                    liq_at = m_open
                elif check == "bar" and m_high >= p:
                    liq_at = p
            if not math.isnan(liq_at):  # closed at that price with the liquidation fee
                gross = pnl(units, entry, liq_at) - abs(value(units, liq_at)) * liq_fee
                balance = max(balance + gross, 0.0)  # the insurance fund takes the rest
                trades.append((n, 1 if units > 0 else -1, True))
                units, entry = 0.0, 0.0
        eq = balance + (pnl(units, entry, data.close[n]) if units else 0.0)
        done = not math.isnan(liq_at) or eq <= 0 or n >= len(data) - 1
        if done and units != 0:  # the forced close at the close, with slippage and fee
            px = data.close[n] - np.sign(units) * data.close[n] * bps * 1e-4
            balance += pnl(units, entry, px) - abs(value(units, px)) * fee
            trades.append((n, 1 if units > 0 else -1, False))
            units, entry = 0.0, 0.0
            eq = balance
        equity.append(eq)
        if done:
            break
    return equity, trades


def spiky_marks(data: MarketData, seed: int) -> MarketData:
    """Marks near the traded closes whose candles wick beyond both closes (0.4 % on average)."""
    rng = np.random.default_rng(seed)
    close = data.close * np.exp(rng.normal(0.0, 1e-3, len(data)))
    prev = np.r_[close[:1], close[:-1]]
    high = np.maximum(prev, close) * (1.0 + rng.exponential(0.004, len(data)))
    low = np.minimum(prev, close) * (1.0 - rng.exponential(0.004, len(data)))
    return with_marks(data, close, high, low)


@pytest.mark.parametrize(("contract", "rtol"), [("linear", 1e-10), ("inverse", 1e-14)])
def test_env_equals_the_independent_reimplementation_with_mark_candles(
    contract: str, rtol: float
) -> None:
    settings = EnvSettings(
        window=1,
        action_mode="discrete4",
        contract=contract,
        initial_cash=1.0 if contract == "inverse" else 10_000.0,
        taker_fee=0.0005,
        slippage_bps=2.0,
        leverage=20.0,
        maintenance_margin=0.005,
        liquidation_fee=0.003,  # below the margin rate: a liquidation leaves equity > 0
        episode_length=None,
    )
    liquidated = {"candles": 0, "closes": 0}
    inside = 0  # candle liquidations at a price the mark closes never reached in that bar
    for seed in range(12):
        candles = spiky_marks(random_walk(200, seed=seed), seed)
        closes_only = dataclasses.replace(candles, mark_high=None, mark_low=None)
        actions = np.random.default_rng(100 + seed).choice(
            4, size=len(candles), p=[0.7, 0.1, 0.1, 0.1]
        )
        for kind, data in (("candles", candles), ("closes", closes_only)):
            env = TradingEnv(data, WeightedReward(), settings, evaluation=True)
            env.reset(seed=seed)
            got = []
            for a in actions:
                _, _, term, trunc, info = env.step(int(a))
                got.append(info["equity"])
                if term or trunc:
                    break
            want, trades = reference(data, actions, settings)
            # to rtol of each value and of the account: a liquidation's remainder is a
            # difference of near-equal amounts (margin - loss - fee)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * settings.initial_cash)
            log = [
                (int(r["exit_index"]), int(r["side"]), bool(r["liquidated"])) for r in env.trades
            ]
            assert log == trades
            for r in env.trades[env.trades["liquidated"]]:
                liquidated[kind] += 1
                n = int(r["exit_index"])
                lo, hi = sorted(data.mark_price[n - 1 : n + 1])
                inside += kind == "candles" and not lo <= r["exit_price"] <= hi
    # both conventions were exercised, and the candles' own range mattered
    assert liquidated["candles"] >= 8 and liquidated["closes"] >= 6 and inside >= 4


# ------------------------------------------------------------------ real data
DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PERP_1H = DATA_DIR / "binance_usdm_BTCUSDT_perp_1h.parquet"
SPOT_1M = DATA_DIR / "binance_spot_BTCUSDT_1m_2024-07-26_2024-08-25.parquet"
MMR = 0.004


@pytest.fixture(scope="module")
def august() -> tuple[MarketData, pd.DataFrame]:
    """The perpetual's 1h bars of 2024-07-27 .. 08-24 through the file source, with the spot 1m
    candles as the mark file (their own high/low per hour), and the raw 1m candles."""
    if not (PERP_1H.exists() and SPOT_1M.exists()):
        pytest.skip(f"real data not found under {DATA_DIR} (shared data folder absent)")
    frame = FileSource(
        str(PERP_1H), mark_path=str(SPOT_1M), start="2024-07-27", end="2024-08-25"
    ).load()
    assert frame.attrs["mark"]["range"] == "mark candles' own high/low"
    n = len(frame)
    data = MarketData(
        "aug2024",
        frame.index.tz_convert(None).to_numpy(),
        *(frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")),
        np.zeros((n, 1), np.float32),
        ("zero",),
        np.zeros(n),
        mark_price=frame["mark_price"].to_numpy(),
        mark_high=frame["mark_high"].to_numpy(),
        mark_low=frame["mark_low"].to_numpy(),
    )
    return data, pd.read_parquet(SPOT_1M).set_index("date")


def liquidation_bar(data: MarketData, start: int, side: int, leverage: float):
    """Hold a full ``side`` position from the open of bar ``start + 1``; the bar it is
    liquidated on (``None``: never) and its trade."""
    rows = slice(start, None)
    arrays = {
        k: None if getattr(data, k) is None else getattr(data, k)[rows]
        for k in (
            "timestamps",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "features",
            "funding_rate",
            *MARK_COLUMNS,
        )
    }
    settings = EnvSettings(
        window=1,
        action_mode="discrete3",
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=leverage,
        maintenance_margin=MMR,
        liquidation_fee=0.0,
        funding=False,
        episode_length=None,
    )
    env = TradingEnv(dataclasses.replace(data, **arrays), WeightedReward(), settings, True)
    run_episode(env, 2 if side > 0 else 0, seed=0)
    trade = env.trades[-1]
    return (start + int(trade["exit_index"]) if trade["liquidated"] else None), trade


# (entry decided at the close of the hour before, side, leverage); the hours the mark closes
# alone liquidate later than the 1m candles' own range, pinned below
CHECKS = [
    ("2024-07-29 00:00", 1, 20.0),
    ("2024-08-01 00:00", 1, 5.0),
    ("2024-08-02 00:00", 1, 10.0),
    ("2024-08-04 00:00", 1, 10.0),
    ("2024-08-04 12:00", 1, 20.0),
    ("2024-08-05 00:00", 1, 20.0),
    ("2024-08-05 06:00", -1, 10.0),
    ("2024-08-05 06:00", -1, 20.0),
    ("2024-08-08 00:00", -1, 10.0),
]
LATER_BY_CLOSES = [23, 0, 1, 0, 0, 3, 2, 0, 0]


def test_real_leveraged_positions_are_liquidated_in_the_hour_the_1m_mark_crosses(
    august,
) -> None:
    """Through the 2024-08-05 sell-off: with the spot 1m candles standing in for the mark
    (Binance's mark follows a spot index; no mark-candle file is in the shared data), each
    leveraged position is liquidated in the hour holding the first 1m candle through its
    liquidation price, found here from the raw candles; on mark closes alone 4 of 9 are
    liquidated 1 to 23 hours later."""
    data, minutes = august
    stamps = pd.DatetimeIndex(data.timestamps, tz="UTC")
    later = []
    for start, side, lev in CHECKS:
        s = stamps.get_loc(pd.Timestamp(start, tz="UTC"))
        bar, trade = liquidation_bar(data, s, side, lev)
        entry = data.open[s + 1]
        assert trade["entry_price"] == pytest.approx(entry, rel=1e-15)
        # balance + units (p - entry) = mmr |units| p with units = side lev cash / entry
        p_liq = entry * (1 - side / lev) / (1 - side * MMR)
        after = minutes.loc[stamps[s + 1] :]
        crossed = after["low"] <= p_liq if side > 0 else after["high"] >= p_liq
        touch = crossed.idxmax()
        assert crossed.any() and bar is not None
        assert stamps[bar] == touch.floor("1h"), (start, side, lev)
        assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)
        closes_only = dataclasses.replace(data, mark_high=None, mark_low=None)
        interpolated, _ = liquidation_bar(closes_only, s, side, lev)
        later.append(interpolated - bar)
    assert later == LATER_BY_CLOSES
