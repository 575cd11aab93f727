"""Mark prices end to end: files -> build_dataset -> TradingEnv, hand-computed.

Bars and marks are written as files, prepared by :func:`build_dataset` and traded by the env.
The traded price is flat at 10,000; the mark file dips. Funding is valued at the mark and a
10x long is liquidated at the mark's path, while the same files without the mark file give the
traded-price answers. Perturbing marks after bar ``t`` changes nothing at or before ``t``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from cryptotrade.data.dataset import build_dataset
from cryptotrade.data.features import FeatureSet
from cryptotrade.data.market_data import MarketData
from cryptotrade.data.sources import FileSource
from cryptotrade.data.spec import DataSpec
from cryptotrade.data.splits import ChronoSplit
from cryptotrade.data.validation import ValidationPolicy
from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward

HOLD, LONG = 0, 1
N = 40
ISO = "%Y-%m-%dT%H:%M:%SZ"
TIMES = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC")


def marks_at_close() -> np.ndarray:
    """marks[t] = the mark at bar t's close: 10,000 but 9,000 at bar 3's close (a 10x long's
    liquidation price ~9,045 lies inside the linear path 10,000 -> 9,000 through bar 3) and
    8,000 at bar 7's close (the mark at bar 8's open, when funding settles)."""
    marks = np.full(N, 10_000.0)
    marks[3], marks[4:7], marks[7] = 9_000.0, 9_500.0, 8_000.0
    return marks


def write_files(folder: Path, marks: np.ndarray) -> tuple[str, str, str]:
    flat = np.full(N, 10_000.0)
    bars = pd.DataFrame(
        {
            "date": TIMES.strftime(ISO),
            "open": flat,
            "high": flat + 10.0,
            "low": flat - 50.0,  # the traded low never reaches the liquidation price
            "close": flat,
            "volume": np.full(N, 5.0),
        }
    )
    bars.to_csv(folder / "bars.csv", index=False)
    # Binance markPriceKlines layout: open-labelled rows, the close is the mark at the row's end
    pd.DataFrame({"open_time": TIMES.strftime(ISO), "close": marks}).to_csv(
        folder / "mark.csv", index=False
    )
    settle = pd.date_range("2024-01-01", periods=6, freq="8h", tz="UTC")
    pd.DataFrame(
        {"timestamp": settle.strftime(ISO), "fundingRate": [0, 0.0001, 0, 0, 0, 0]}
    ).to_csv(folder / "funding.csv", index=False)
    return str(folder / "bars.csv"), str(folder / "mark.csv"), str(folder / "funding.csv")


def prepare(
    folder: Path, marks: np.ndarray | None, coverage: Literal["reject", "warn"] = "reject"
) -> MarketData:
    """The train split of the files in ``folder``; with the mark file unless ``marks`` is None."""
    bars, mark, funding = write_files(folder, marks_at_close() if marks is None else marks)
    source = FileSource(
        bars,
        funding_path=funding,
        mark_path=None if marks is None else mark,
        mark_coverage=coverage,
    )
    spec = DataSpec(source, ValidationPolicy(), ChronoSplit(train=0.7, val=0.15, test=0.15))
    features = FeatureSet({"t": {"kind": "time"}})  # no warm-up: train starts at bar 0
    return build_dataset(spec, features, cache_dir=None, fingerprint="mark-e2e").train


def make_env(data: MarketData, leverage: float) -> TradingEnv:
    settings = EnvSettings(
        window=1,
        action_mode="discrete4",
        contract="linear",
        initial_cash=10_000.0,
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=leverage,
        maintenance_margin=0.005,
        liquidation_fee=0.0,
        episode_length=None,
    )
    env = TradingEnv(data, WeightedReward(), settings, evaluation=True)
    env.reset(seed=0)
    return env


def run(data: MarketData, leverage: float, steps: int) -> list[dict]:
    """Go long at bar 1's open and hold; the info of every step (stops at the episode end)."""
    env = make_env(data, leverage)
    infos = []
    for k in range(steps):
        _, _, term, trunc, info = env.step(LONG if k == 0 else HOLD)
        infos.append({**info, "terminated": term, "trades": env.trades.copy()})
        if term or trunc:
            break
    return infos


def test_the_mark_file_reaches_the_env_aligned_to_bar_closes(tmp_path: Path) -> None:
    data = prepare(tmp_path, marks_at_close())
    np.testing.assert_array_equal(data.mark_price, marks_at_close()[: len(data)])
    assert data.funding_rate[8] == 0.0001 and data.funding_rate.sum() == 0.0001
    assert prepare(tmp_path, None).mark_price is None


def test_funding_is_valued_at_the_mark_fills_at_the_traded_price(tmp_path: Path) -> None:
    marked = run(prepare(tmp_path, marks_at_close()), leverage=1.0, steps=8)
    traded = run(prepare(tmp_path, None), leverage=1.0, steps=8)
    # 1x long of 10,000 USDT at bar 1's traded open 10,000: 1 BTC, whatever the mark
    assert marked[0]["units"] == traded[0]["units"] == 1.0
    # funding at bar 8's open: 1 BTC x the mark then (bar 7's close, 8,000) x 0.01% = 0.80
    # USDT; on traded prices 1 BTC x 10,000 x 0.01% = 1.00 USDT
    assert round(marked[7]["equity"], 2) == 10_000.0 - 0.80
    assert round(traded[7]["equity"], 2) == 10_000.0 - 1.00
    # before the settlement both are marked to the traded close: exactly the initial cash
    assert all(info["equity"] == 10_000.0 for info in marked[:7])


def test_liquidation_follows_the_mark_path_not_the_traded_low(tmp_path: Path) -> None:
    marked = run(prepare(tmp_path, marks_at_close()), leverage=10.0, steps=10)
    traded = run(prepare(tmp_path, None), leverage=10.0, steps=10)
    # 10x long: 10 BTC at 10,000 on 10,000 USDT; liquidated when equity reaches the
    # maintenance margin: 10,000 + 10 (p - 10,000) = 0.005 x 10 p -> p = 90,000 / 9.95
    p_liq = 90_000 / 9.95  # 9,045.23: the traded low 9,950 never gets there
    assert not any(info["terminated"] for info in traded)
    last = marked[-1]
    trade = last["trades"][0]
    assert len(marked) == 3 and last["terminated"]
    assert trade["liquidated"] and trade["exit_index"] == 3
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)
    # left: the maintenance margin 0.5% x 10 x p_liq = 452.26 USDT (no liquidation fee)
    assert round(last["equity"], 2) == round(0.005 * 10 * p_liq, 2) == 452.26


@pytest.mark.parametrize("t", [2, 6])
def test_marks_after_bar_t_change_nothing_at_or_before_t(tmp_path: Path, t: int) -> None:
    base = marks_at_close()
    changed = base.copy()
    changed[t + 1 :] *= np.random.default_rng(t).uniform(0.8, 1.2, N - t - 1)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # coverage=warn: a leak of one bar must fail the comparison below, not the coverage check
    a, b = prepare(tmp_path / "a", base, "warn"), prepare(tmp_path / "b", changed, "warn")
    np.testing.assert_array_equal(a.mark_price[: t + 1], b.mark_price[: t + 1])
    assert not np.array_equal(a.mark_price[t + 1 :], b.mark_price[t + 1 :])  # it did change
    np.testing.assert_array_equal(a.features[: t + 1], b.features[: t + 1])
    for leverage in (1.0, 10.0):
        # step k trades through bar k: steps 1..t see bars <= t only
        before = run(a, leverage, t)
        after = run(b, leverage, t)
        for x, y in zip(before, after, strict=True):
            assert x["equity"] == y["equity"] and x["units"] == y["units"]
            assert x["terminated"] == y["terminated"]


def test_the_live_observation_keeps_the_marks_aligned(tmp_path: Path) -> None:
    from cryptotrade.live.observation import window_from, with_padding

    data = prepare(tmp_path, marks_at_close())
    live = with_padding(window_from(data, first=6, window=4))
    np.testing.assert_array_equal(live.mark_price[:-1], data.mark_price[3:])
    assert live.mark_price[-1] == data.mark_price[-1] and len(live.mark_price) == len(live)


def test_mark_candles_reach_the_env_through_the_cache_and_liquidate_on_their_low(
    tmp_path: Path,
) -> None:
    # the same files, the mark file now with candles (Binance markPriceKlines: open, high, low,
    # close): the closes stay at 10,000, the candle of bar 2 wicks to 9,000 through the 10x
    # long's liquidation price 90,000 / 9.95 = 9,045.23; with its closes alone nothing happens
    flat = np.full(N, 10_000.0)
    bars, mark, funding = write_files(tmp_path, flat)
    low = flat - 20.0
    low[2] = 9_000.0
    pd.DataFrame(
        {
            "open_time": TIMES.strftime(ISO),
            "open": flat,
            "high": flat + 20,
            "low": low,
            "close": flat,
        }
    ).to_csv(mark, index=False)
    spec = DataSpec(
        FileSource(bars, funding_path=funding, mark_path=mark),
        ValidationPolicy(),
        ChronoSplit(train=0.7, val=0.15, test=0.15),
    )
    features = FeatureSet({"t": {"kind": "time"}})
    built = build_dataset(spec, features, cache_dir=tmp_path, fingerprint="candles").train
    cached = build_dataset(spec, features, cache_dir=tmp_path, fingerprint="candles")
    assert cached.meta["cache"]["hit"]
    for data in (built, cached.train):
        assert data.mark_low is not None and data.mark_high is not None
        assert data.mark_low[2] == 9_000.0 and data.mark_high[2] == 10_020.0
        infos = run(data, leverage=10.0, steps=6)
        assert len(infos) == 2 and infos[-1]["terminated"]
        trade = infos[-1]["trades"][0]
        assert trade["liquidated"] and trade["exit_index"] == 2
        assert trade["exit_price"] == pytest.approx(90_000 / 9.95, rel=1e-12)
    assert cached.meta["mark"]["range"] == "mark candles' own high/low"
    (tmp_path / "closes").mkdir()
    closes_only = prepare(tmp_path / "closes", flat)
    assert closes_only.mark_low is None
    assert not any(i["terminated"] for i in run(closes_only, leverage=10.0, steps=6))
