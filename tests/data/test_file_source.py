"""FileSource on the real files in ../shared/data and on small hand-made files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sources_testutil import data_option_node, shared_file

from cryptotrade.data.sources import FileSource, TickSource
from cryptotrade.data.sources.frames import to_utc
from cryptotrade.data.validation import DataValidationError, ValidationPolicy
from cryptotrade.errors import DataError

SPOT_1H = "binance_spot_BTCUSDT_1h.parquet"
SPOT_1M = "binance_spot_BTCUSDT_1m_2024-07-26_2024-08-25.parquet"
PERP_1H = "binance_usdm_BTCUSDT_perp_1h.parquet"
PERP_FUNDING = "binance_usdm_BTCUSDT_funding_8h.parquet"
BITMEX_1M = "bitmex_XBTUSD_1m_2019.parquet"
BITMEX_FUNDING = "bitmex_XBTUSD_funding_2016-05-14_2020-11-05.csv"


def test_spot_1h_parquet_loads_as_the_readme_describes() -> None:
    bars = FileSource(str(shared_file(SPOT_1H))).load()
    assert len(bars) == 61_246
    assert str(bars.index.tz) == "UTC" and bars.index.name == "date"
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.index[0] == pd.Timestamp("2018-01-01 00:00", tz="UTC")
    assert bars.iloc[0].tolist() == [13715.65, 13715.65, 13400.01, 13529.01, 443.356199]
    # 27 gaps, 122 missing hours, the longest (34 h between bars) ending 2018-02-09 10:00
    with pytest.raises(DataValidationError, match=r"longest 33 bars"):
        ValidationPolicy(timeframe="1h").apply(bars)
    _, counts = ValidationPolicy(timeframe="1h", fill_gaps=33).apply(bars)
    assert counts["gaps_filled"] == 27 and counts["bars_filled"] == 122
    gap_end = bars.index.to_series().diff() == pd.Timedelta(hours=34)
    assert bars.index[gap_end.to_numpy()].tolist() == [pd.Timestamp("2018-02-09 10:00", tz="UTC")]


def test_file_option_default_loads_and_validates() -> None:
    shared_file(SPOT_1H)
    source = data_option_node("file", "source")
    policy = data_option_node("file", "validation")
    _, counts = policy.apply(source.load())
    assert counts["gaps_kept"] == 6 and counts["gaps_filled"] == 21
    assert counts["bars_filled"] + counts["bars_missing"] == 122


def test_one_minute_file_resampled_to_1h_equals_the_1h_file() -> None:
    minute = FileSource(str(shared_file(SPOT_1M))).load()
    hourly = FileSource(str(shared_file(SPOT_1H)), start="2024-07-26", end="2024-08-26").load()
    groups = minute.groupby(minute.index.floor("1h"))
    full = groups.size() == 60  # the month's first and last hours are partial
    agg = groups.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )[full]
    assert len(agg) == 719
    ref = hourly.loc[agg.index]
    np.testing.assert_array_equal(
        agg[["open", "high", "low", "close"]], ref[["open", "high", "low", "close"]]
    )
    # volumes are decimals with 5 places; float sums carry ~1e-12 noise, so compare at 1e-8
    np.testing.assert_array_equal(agg["volume"].round(8), ref["volume"].round(8))


def test_bitmex_end_labelled_bars_are_indexed_by_open_time() -> None:
    path = str(shared_file(BITMEX_1M))
    bars = FileSource(
        path, timestamp_convention="end", symbol="XBTUSD", keep_columns=["trades", "vwap"]
    ).load()
    raw = pd.read_parquet(path, columns=["timestamp", "open", "close", "trades"])
    assert len(bars) == len(raw) == 525_600
    # the bucket stamped 2019-01-01 00:00 is the minute that opened at 2018-12-31 23:59
    assert bars.index[0] == pd.Timestamp("2018-12-31 23:59", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2019-12-31 23:58", tz="UTC")
    np.testing.assert_array_equal(bars["close"], raw["close"])
    assert (bars.index + pd.Timedelta(minutes=1) == raw["timestamp"].dt.as_unit("ns")).all()
    # open is the previous bucket's close, so it can lie outside [low, high]: rejected by default
    with pytest.raises(DataValidationError, match=r"OHLC inconsistent .*9814 row\(s\)"):
        ValidationPolicy(non_finite="fill").apply(bars)
    fixed, counts = ValidationPolicy(non_finite="fill", ohlc="clip").apply(bars)
    assert counts["ohlc"] == 9814 and counts["non_finite"] == 3  # vwap empty in 3 tradeless bars
    assert ((fixed["open"] >= fixed["low"]) & (fixed["open"] <= fixed["high"])).all()


def test_bitmex_volume_mapped_from_home_notional() -> None:
    path = str(shared_file(BITMEX_1M))
    bars = FileSource(
        path, timestamp_convention="end", columns={"homeNotional": "volume"}, end="2019-01-01 00:05"
    ).load()
    raw = pd.read_parquet(path).head(6)
    np.testing.assert_allclose(bars["volume"], raw["homeNotional"])


def test_perp_with_binance_funding_parquet_aligns_every_settlement() -> None:
    perp, funding_path = str(shared_file(PERP_1H)), str(shared_file(PERP_FUNDING))
    # the perpetual lists on 2019-09-08 17:00; its first settlement is 2019-09-10 08:00
    with pytest.raises(DataError, match=r"32 bar\(s\) \(2019-09-08T17:00.*funding_coverage=warn"):
        FileSource(perp, funding_path=funding_path).load()
    bars = FileSource(perp, funding_path=funding_path, funding_coverage="warn").load()
    assert bars.attrs["funding"]["bars_uncovered"] == 32
    assert bars.attrs["funding"]["settlements"] == 5_819
    assert "32 bar(s) outside the funding file" in bars.attrs["warnings"][0]
    funding = pd.read_parquet(shared_file(PERP_FUNDING))
    paid = bars["funding_rate"][bars["funding_rate"] != 0]
    assert len(bars) == 46_591
    # every 8h settlement lands on the 1h bar opening at that time with its rate
    nonzero = funding[funding["open"] != 0]
    assert paid.index.equals(pd.DatetimeIndex(nonzero["date"]).as_unit("ns").rename("date"))
    np.testing.assert_array_equal(paid.to_numpy(), nonzero["open"].to_numpy())
    assert set(paid.index.hour) <= {0, 8, 16}


def test_bitmex_funding_csv_aligns_to_end_labelled_minutes() -> None:
    bars = FileSource(
        str(shared_file(BITMEX_1M)),
        timestamp_convention="end",
        symbol="XBTUSD",
        end="2019-01-03",
        funding_path=str(shared_file(BITMEX_FUNDING)),
    ).load()
    paid = bars["funding_rate"][bars["funding_rate"] != 0]
    funding = pd.read_csv(shared_file(BITMEX_FUNDING))
    ts = pd.to_datetime(funding["timestamp"], utc=True)
    expected = funding[(ts >= "2018-12-31 23:59") & (ts < "2019-01-03")]
    assert [t.hour for t in paid.index] == [4, 12, 20] * 2
    np.testing.assert_array_equal(paid.to_numpy(), expected["fundingRate"].to_numpy())


def test_binance_public_data_csv_with_and_without_header() -> None:
    spot = FileSource(
        str(shared_file("binance_public_data_spot_BTCUSDT-1h-2024-10-28.csv")),
        keep_columns=["trades"],
    ).load()
    assert len(spot) == 24 and spot.index[0] == pd.Timestamp("2024-10-28", tz="UTC")
    assert spot.iloc[0].tolist() == [68021.69, 68116.78, 67839.90, 67859.91, 555.35912, 145225.0]
    perp = FileSource(
        str(shared_file("binance_public_data_usdm_BTCUSDT-1h-2024-10-28.csv")),
        columns={"count": "trades"},
        keep_columns=["trades"],
    ).load()
    assert perp.index[-1] == pd.Timestamp("2024-10-28 23:00", tz="UTC")
    assert perp.iloc[0].tolist() == [67992.7, 68094.6, 67804.7, 67835.2, 5179.117, 85022.0]
    hourly = FileSource(str(shared_file(SPOT_1H)), start="2024-10-28", end="2024-10-29").load()
    np.testing.assert_array_equal(spot[["open", "close"]], hourly[["open", "close"]])


def test_csv_gz_with_mapping_epoch_seconds_and_dates(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": [1_700_000_000 + 300 * i for i in range(4)],
            "o": [1.0, 2.0, 3.0, 4.0],
            "h": [2.0, 3.0, 4.0, 5.0],
            "l": [0.5, 1.5, 2.5, 3.5],
            "c": [2.0, 3.0, 4.0, 5.0],
            "v": [1.0, 1.0, 1.0, 1.0],
        }
    )
    path = tmp_path / "bars.csv.gz"
    frame.to_csv(path, index=False)
    src = FileSource(
        str(path),
        columns={"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"},
        timestamp_column="ts",
        timestamp_convention="end",
        start="2023-11-14T22:13:20",
    )
    bars = src.load()
    # end-labelled 5-minute bars: open = end - 5 min; the first one opens before `start`
    assert bars.index[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert len(bars) == 3 and bars["close"].tolist() == [3.0, 4.0, 5.0]


def test_clear_errors_for_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"timestamp_convention='close'.*'open'.*'end'"):
        FileSource("x.csv", timestamp_convention="close")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"missing.parquet does not exist; set data.source.path"):
        FileSource(str(tmp_path / "missing.parquet")).load()
    path = tmp_path / "bars.csv"
    pd.DataFrame({"date": ["2024-01-01"], "price": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks columns \['open'.*data.source.columns"):
        FileSource(str(path)).load()
    with pytest.raises(ValueError, match=r"timeframe='1M' is not a fixed bar length"):
        FileSource(str(path), timeframe="1M")


def test_one_minute_file_loaded_as_hourly_bars_equals_the_1h_file() -> None:
    hourly = FileSource(str(shared_file(SPOT_1M)), resample_to="1h").load()
    ref = FileSource(str(shared_file(SPOT_1H)), start="2024-07-26", end="2024-08-26").load()
    assert len(hourly) == 719
    ref = ref.loc[hourly.index]
    prices = ["open", "high", "low", "close"]
    np.testing.assert_array_equal(hourly[prices].to_numpy(), ref[prices].to_numpy())
    np.testing.assert_array_equal(hourly["volume"].round(8), ref["volume"].round(8))
    with pytest.raises(ValueError, match="timeframe='1M' is not a fixed bar length"):
        FileSource(str(shared_file(SPOT_1M)), resample_to="1M")


def test_fractional_epoch_timestamps_keep_their_sub_unit_part() -> None:
    # float epochs (Bybit-style trade dumps write seconds like 1585180700.0647) were cast to
    # int64, dropping everything below the unit: trades within a second became ties, so a
    # dump in reverse time order opened and closed its bars on the wrong trade
    got = to_utc(pd.Series([1585180700.0647, 1585180700.9, 1585180701.0]), "s")
    want = pd.to_datetime(["2020-03-25 23:58:20.0647", "2020-03-25 23:58:20.9",
                           "2020-03-25 23:58:21.0"], utc=True).as_unit("ns")  # fmt: skip
    pd.testing.assert_index_equal(got, want)
    # integral floats (a column with a NaN is read as float) stay exact to the nanosecond
    ms = np.array([1_700_000_000_123.0, 1_722_470_400_000.0])
    assert (to_utc(ms).asi8 == ms.astype(np.int64) * 1_000_000).all()


def test_reversed_float_second_trades_open_and_close_on_the_right_trade(tmp_path: Path) -> None:
    trades = pd.DataFrame({"timestamp": [1704067200.1, 1704067200.5, 1704067200.9],
                           "symbol": "BTCUSD", "side": "Buy", "size": 1.0,
                           "price": [100.0, 101.0, 102.0]}).iloc[::-1]  # fmt: skip
    path = tmp_path / "trades.csv"
    trades.to_csv(path, index=False)
    bars = TickSource(str(path), timeframe="1min").load()
    assert (bars["open"].iloc[0], bars["close"].iloc[0]) == (100.0, 102.0)
