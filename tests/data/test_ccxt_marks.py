"""CcxtSource mark prices: ``fetch_mark_ohlcv`` of a real ccxt.binance fed recorded REST rows
(``/fapi/v1/markPriceKlines``, see ccxt_recorded.py), aligned to bar closes and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ccxt_recorded import HOUR_MS, RecordedBinance, kline_rows_from_bars, mark_rows, ms
from sources_testutil import shared_file

from cryptotrade.data.sources import CcxtSource
from cryptotrade.data.sources.ccxt_source import CcxtSourceError
from cryptotrade.errors import DataError

PERP_1H = "binance_usdm_BTCUSDT_perp_1h.parquet"


@pytest.fixture(scope="module")
def perp() -> pd.DataFrame:
    """The recorded perpetual's 1h bars of January 2024."""
    return pd.read_parquet(shared_file(PERP_1H)).set_index("date").loc["2024-01-01":"2024-01-31"]


def premium_marks(perp: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(open times in ms, closes): marks 0.05 % under the traded closes, a hand-made premium."""
    opens = perp.index.as_unit("ns").asi8 // 1_000_000
    return opens, perp["close"].to_numpy() * 0.9995


def source(server: RecordedBinance, tmp_path: Path, **kwargs) -> CcxtSource:
    args = {
        "symbol": "BTC/USDT:USDT",
        "timeframe": "1h",
        "cache_dir": str(tmp_path),
        "backoff_s": 0.0,
        "funding": False,
        "mark_price": True,
        "limit": 100,
    }
    return CcxtSource(**{**args, **kwargs}, client=server.exchange)


def test_mark_candles_give_the_mark_at_each_bar_close_and_are_cached(perp, tmp_path) -> None:
    opens, closes = premium_marks(perp)
    server = RecordedBinance(
        perp=kline_rows_from_bars(perp), mark=mark_rows(opens, closes), now_ms=ms("2024-02-01")
    )
    bars = source(server, tmp_path, start="2024-01-01", end="2024-01-06").load()
    queries = server.requests_to("/fapi/v1/markPriceKlines")
    assert [q["symbol"] for q in queries] == ["BTCUSDT"] * 2  # 120 candles, pages of 100
    assert [int(q["startTime"]) for q in queries] == [ms("2024-01-01"), ms("2024-01-05 04:00")]
    np.testing.assert_allclose(bars["mark_price"].to_numpy(), closes[:120], rtol=1e-12)
    assert bars.attrs["mark"]["bars_uncovered"] == 0
    # the candles' own range, on which the env liquidates (mark_rows: high 1.001 c, low .999^2 c)
    np.testing.assert_allclose(bars["mark_high"].to_numpy(), closes[:120] * 1.001, rtol=1e-8)
    np.testing.assert_allclose(bars["mark_low"].to_numpy(), closes[:120] * 0.999**2, rtol=1e-8)
    assert bars.attrs["mark"]["range"] == "mark candles' own high/low"
    assert bars.attrs["mark"]["bars_without_range"] == 0
    # the next, longer range downloads only the missing marks
    server.urls.clear()
    more = source(server, tmp_path, start="2024-01-01", end="2024-01-08").load()
    assert [int(q["startTime"]) for q in server.requests_to("/fapi/v1/markPriceKlines")] == [
        ms("2024-01-06")
    ]
    np.testing.assert_allclose(more["mark_price"].to_numpy(), closes[:168], rtol=1e-12)
    np.testing.assert_allclose(more["mark_low"].to_numpy(), closes[:168] * 0.999**2, rtol=1e-8)
    names = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    assert names == ["BTC-USDT-USDT_1h.parquet", "BTC-USDT-USDT_1h_mark_hlc.parquet"]


def test_the_forming_mark_candle_is_never_used(perp, tmp_path) -> None:
    opens, closes = premium_marks(perp)
    now = ms("2024-01-02 05:30")  # the 05:00 candles are still forming
    server = RecordedBinance(
        perp=kline_rows_from_bars(perp), mark=mark_rows(opens, closes), now_ms=now
    )
    bars = source(server, tmp_path, start="2024-01-02").load()
    assert bars.index[-1] == pd.Timestamp("2024-01-02 04:00", tz="UTC")
    assert bars["mark_price"].iloc[-1] == pytest.approx(closes[24 + 4], rel=1e-12)


def test_missing_mark_candles_are_rejected_or_carried_forward(perp, tmp_path) -> None:
    opens, closes = premium_marks(perp)
    keep = (opens < ms("2024-01-01 10:00")) | (opens >= ms("2024-01-01 12:00"))
    server = RecordedBinance(
        perp=kline_rows_from_bars(perp),
        mark=mark_rows(opens[keep], closes[keep]),
        now_ms=ms("2024-02-01"),
    )
    with pytest.raises(
        DataError,
        match=r"2 bar\(s\) \(closing 2024-01-01T11:00.*no mark in the binance BTC/USDT:USDT "
        r"mark-price candles in the 1h before.*mark_coverage=warn",
    ):
        source(server, tmp_path, start="2024-01-01", end="2024-01-02").load()
    bars = source(
        server, tmp_path / "warn", start="2024-01-01", end="2024-01-02", mark_coverage="warn"
    ).load()
    assert bars["mark_price"].iloc[10] == bars["mark_price"].iloc[11]
    assert bars["mark_price"].iloc[11] == pytest.approx(closes[9], rel=1e-12)
    # the two bars without a candle have no intrabar mark range: high = low = the carried mark
    assert (bars["mark_high"].iloc[10:12] == bars["mark_price"].iloc[10:12]).all()
    assert (bars["mark_low"].iloc[10:12] == bars["mark_price"].iloc[10:12]).all()
    assert bars.attrs["mark"]["bars_without_range"] == 2
    assert bars.attrs["mark"]["bars_forward_filled"] == 2 and bars.attrs["warnings"]


def test_spot_has_no_marks_and_bad_settings_are_refused(perp, tmp_path) -> None:
    spot = kline_rows_from_bars(perp, HOUR_MS)
    server = RecordedBinance(spot=spot, now_ms=ms("2024-02-01"))
    with pytest.raises(CcxtSourceError, match=r"mark_price=true but BTC/USDT on binance"):
        source(server, tmp_path, symbol="BTC/USDT", start="2024-01-01", end="2024-01-02").load()
    with pytest.raises(ValueError, match="mark_coverage='sometimes'"):
        CcxtSource(mark_coverage="sometimes")  # type: ignore[arg-type]
    plain = source(server, tmp_path, symbol="BTC/USDT", mark_price=False, end="2024-01-02")
    assert "mark_price" not in plain.load().columns


def test_a_mark_candle_without_a_positive_close_is_refused(perp, tmp_path) -> None:
    opens, closes = premium_marks(perp)
    closes = closes.copy()
    closes[5] = 0.0
    server = RecordedBinance(
        perp=kline_rows_from_bars(perp), mark=mark_rows(opens, closes), now_ms=ms("2024-02-01")
    )
    with pytest.raises(
        DataError,
        match=r"1 mark-price candle\(s\) without a positive close "
        r"\(first opening 2024-01-01T05:00.*mark_price=false",
    ):
        source(server, tmp_path, start="2024-01-01", end="2024-01-02").load()


def test_the_ccxt_mark_options_compose_and_instantiate() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from cryptotrade.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "data=binance_perp",
                "data.source.mark_price=true",
                "data.source.mark_coverage=warn",
            ],
        )
    src = instantiate(cfg.data.source)
    assert src.mark_price is True and src.mark_coverage == "warn"
