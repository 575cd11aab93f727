"""TickSource and the numba resampling kernels: hand-computed bars, real samples, pandas oracle."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sources_testutil import data_option_node, shared_file

from cryptotrade.data.sources import FileSource, TickSource, resample_bars, resample_trades
from cryptotrade.data.validation import ValidationPolicy

WS_SAMPLE = "bitmex_XBTUSD_ws_trades_2021-07-22_sample.csv"
AT_FUNDING = "bitmex_XBTUSD_trades_at_funding_times.csv"
BITMEX_FUNDING = "bitmex_XBTUSD_funding_2016-05-14_2020-11-05.csv"
COLUMNS = ["open", "high", "low", "close", "volume", "trades", "buy_volume", "sell_volume", "vwap"]

# (time, side, size, price): hand-made trades around minute boundaries, minute 00:02 empty
TRADES = [
    ("2024-01-01T00:00:10Z", "Buy", 2.0, 100.0),
    ("2024-01-01T00:00:30Z", "Sell", 1.0, 102.0),
    ("2024-01-01T00:00:59.999Z", "Buy", 1.0, 99.0),
    ("2024-01-01T00:01:00.000Z", "Sell", 5.0, 101.0),  # exactly on the boundary: next bar
    ("2024-01-01T00:03:15Z", "Buy", 1.0, 103.0),
    ("2024-01-01T00:03:45Z", "Buy", 3.0, 104.0),
]
# open, high, low, close, volume, trades, buy_volume, sell_volume, vwap -- by hand
BARS_1M = {
    "2024-01-01 00:00": [100, 102, 99, 99, 4, 3, 3, 1, (200 + 102 + 99) / 4],
    "2024-01-01 00:01": [101, 101, 101, 101, 5, 1, 0, 5, 101],
    "2024-01-01 00:03": [103, 104, 103, 104, 4, 2, 4, 0, (103 + 312) / 4],
}
FLAT_00_02 = [101, 101, 101, 101, 0, 0, 0, 0, 101]


def write_trades(path: Path, rows=TRADES, **extra) -> Path:
    frame = pd.DataFrame(rows, columns=["timestamp", "side", "size", "price"])
    frame.insert(1, "symbol", "XBTUSD")
    for k, v in extra.items():
        frame[k] = v
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def expected(bars: dict[str, list[float]]) -> pd.DataFrame:
    index = pd.DatetimeIndex(list(bars), tz="UTC", name="date").as_unit("ns")
    return pd.DataFrame(np.array(list(bars.values()), dtype=float), index=index, columns=COLUMNS)


def test_hand_computed_one_minute_bars_drop_empty(tmp_path: Path) -> None:
    bars = TickSource(str(write_trades(tmp_path / "t.csv"))).load()
    pd.testing.assert_frame_equal(bars, expected(BARS_1M))


def test_empty_bars_forward_filled(tmp_path: Path) -> None:
    bars = TickSource(str(write_trades(tmp_path / "t.csv")), empty="ffill").load()
    want = dict(BARS_1M)
    want["2024-01-01 00:02"] = FLAT_00_02
    pd.testing.assert_frame_equal(bars, expected(dict(sorted(want.items()))))
    _, counts = ValidationPolicy(timeframe="1min").apply(bars)  # a clean, gap-free series
    assert sum(counts.values()) == 0


def test_several_timeframes_from_one_read(tmp_path: Path) -> None:
    src = TickSource(str(write_trades(tmp_path / "t.csv")), extra_timeframes=["5min", "30s"])
    bars = src.load_all()
    assert list(bars) == ["1min", "5min", "30s"]
    vwap = (200 + 102 + 99 + 505 + 103 + 312) / 13
    five = expected({"2024-01-01 00:00": [100, 104, 99, 104, 13, 6, 7, 6, vwap]})
    pd.testing.assert_frame_equal(bars["5min"], five)
    assert bars["30s"].index.strftime("%M:%S").tolist() == ["00:00", "00:30", "01:00", "03:00",
                                                            "03:30"]  # fmt: skip
    assert bars["30s"]["close"].tolist() == [100, 99, 101, 103, 104]


def test_csv_gz_and_parquet_inputs_give_the_same_bars(tmp_path: Path) -> None:
    csv = write_trades(tmp_path / "t.csv")
    gz = tmp_path / "t.csv.gz"
    with csv.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    parquet = write_trades(tmp_path / "t.parquet")
    for path in (gz, parquet):
        pd.testing.assert_frame_equal(TickSource(str(path)).load(), expected(BARS_1M))


def test_trades_converted_once_and_reconverted_when_the_dump_changes(tmp_path: Path) -> None:
    csv = write_trades(tmp_path / "t.csv")
    cache = tmp_path / "cache"
    TickSource(str(csv), cache_dir=str(cache)).load()
    (converted,) = list(cache.rglob("*.parquet"))
    stamp = converted.stat().st_mtime_ns
    pd.testing.assert_frame_equal(TickSource(str(csv), cache_dir=str(cache)).load(),
                                  expected(BARS_1M))  # fmt: skip
    assert converted.stat().st_mtime_ns == stamp  # reused, not rewritten
    write_trades(csv, rows=TRADES[:2])
    bars = TickSource(str(csv), cache_dir=str(cache)).load()
    assert len(bars) == 1 and bars["trades"].iloc[0] == 2 and converted.stat().st_mtime_ns != stamp


def test_unsorted_capture_bitmex_dump_timestamps_and_symbol_filter(tmp_path: Path) -> None:
    rows = [(t.replace("T", "D").rstrip("Z"), *rest) for t, *rest in TRADES]  # 2024-01-01D00:..
    shuffled = [rows[i] for i in (3, 0, 5, 1, 4, 2)]
    frame = pd.DataFrame(shuffled, columns=["timestamp", "side", "size", "price"])
    frame["symbol"] = "XBTUSD"
    other = frame.assign(symbol="ETHUSD", price=1.0)
    path = tmp_path / "dump.csv"
    pd.concat([frame, other]).to_csv(path, index=False)
    bars = TickSource(str(path), symbol="XBTUSD").load()
    pd.testing.assert_frame_equal(bars, expected(BARS_1M))


def test_bad_trade_files_are_explained(tmp_path: Path) -> None:
    path = write_trades(tmp_path / "t.csv", rows=[("2024-01-01T00:00:00Z", "Hold", 1.0, 1.0)])
    with pytest.raises(ValueError, match=r"side values \['hold'\] are neither Buy nor Sell"):
        TickSource(str(path)).load()
    with pytest.raises(ValueError, match=r"lacks trade columns \['homeNotional'\]"):
        TickSource(str(path), volume_column="homeNotional").load()
    with pytest.raises(ValueError, match="empty='zero'"):
        TickSource(str(path), empty="zero")  # type: ignore[arg-type]


def test_kernel_matches_pandas_resample_on_random_trades() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    ts = np.sort(rng.integers(0, 6 * 3_600 * 10**9, n)) + 1_700_000_000 * 10**9
    price = 100 + np.cumsum(rng.normal(0, 0.1, n))
    size = rng.exponential(1.0, n)
    buy = (rng.random(n) < 0.5).astype(np.int8)
    bars = resample_trades(ts, price, size, buy, 60 * 10**9)
    frame = pd.DataFrame({"price": price, "size": size, "buy": size * buy, "pq": price * size},
                         index=pd.to_datetime(ts, utc=True))  # fmt: skip
    grouped = frame.resample("1min")
    ref = grouped["price"].ohlc()
    ref["volume"] = grouped["size"].sum()
    ref["trades"] = grouped["price"].count()
    ref["buy_volume"] = grouped["buy"].sum()
    ref["vwap"] = grouped["pq"].sum() / ref["volume"]
    ref = ref[ref["trades"] > 0]
    np.testing.assert_array_equal(bars.index.asi8, ref.index.as_unit("ns").asi8)
    for col in ("open", "high", "low", "close", "trades"):
        np.testing.assert_array_equal(bars[col], ref[col], err_msg=col)
    for col in ("volume", "buy_volume", "vwap"):
        np.testing.assert_allclose(bars[col], ref[col], rtol=1e-12, err_msg=col)
    np.testing.assert_allclose(bars["sell_volume"], ref["volume"] - ref["buy_volume"], atol=1e-9)


def test_real_websocket_sample_resamples_to_hand_checked_bars() -> None:
    bars = TickSource(str(shared_file(WS_SAMPLE)), symbol="XBTUSD").load()
    # 22:35:59.790 one Buy 1000 @ 32175.0; 22:36:11 .. 22:36:35 fifteen Buys
    sizes = [100, 900, 100, 200, 100, 100, 100, 300, 1000, 100, 24300, 200, 100, 7300, 3000]
    prices = [32180.5, 32180.5, 32182.5, 32182.5, 32182.5, 32184.0, 32184.0, 32185.0, 32185.0,
              32185.0, 32185.5, 32186.0, 32186.5, 32187.0, 32187.0]  # fmt: skip
    vwap = sum(p * s for p, s in zip(prices, sizes, strict=True)) / 37_900
    want = expected({
        "2021-07-22 22:35": [32175.0, 32175.0, 32175.0, 32175.0, 1000, 1, 1000, 0, 32175.0],
        "2021-07-22 22:36": [32180.5, 32187.0, 32180.5, 32187.0, 37_900, 15, 37_900, 0, vwap],
    })  # fmt: skip
    pd.testing.assert_frame_equal(bars, want)


def test_real_trades_at_funding_times_get_bitmex_funding() -> None:
    bars = TickSource(str(shared_file(AT_FUNDING)), timeframe="1h", symbol="XBTUSD",
                      funding_path=str(shared_file(BITMEX_FUNDING))).load()  # fmt: skip
    raw = pd.read_csv(shared_file(AT_FUNDING))
    funding = pd.read_csv(shared_file(BITMEX_FUNDING))
    rates = pd.Series(funding["fundingRate"].to_numpy(),
                      index=pd.to_datetime(funding["timestamp"], utc=True))  # fmt: skip
    assert len(bars) == len(raw) == 2652 and (bars["trades"] == 1).all()
    # each trade sits seconds after a settlement; its 1h bar opens at that settlement
    np.testing.assert_array_equal(bars["funding_rate"], rates.loc[bars.index].to_numpy())
    np.testing.assert_array_equal(bars["close"], raw["price"])


def test_one_minute_file_resamples_to_the_1h_file() -> None:
    minute = FileSource(str(shared_file("binance_spot_BTCUSDT_1m_2024-07-26_2024-08-25.parquet")))
    hourly = FileSource(str(shared_file("binance_spot_BTCUSDT_1h.parquet")),
                        start="2024-07-26", end="2024-08-26").load()  # fmt: skip
    bars = resample_bars(minute.load(), "1h")  # partial first/last hours dropped
    assert len(bars) == 719 and bars.index[0] == pd.Timestamp("2024-07-26 15:00", tz="UTC")
    ref = hourly.loc[bars.index]
    prices = ["open", "high", "low", "close"]
    np.testing.assert_array_equal(bars[prices].to_numpy(), ref[prices].to_numpy())
    # volumes have 5 decimals; the float sum of 60 of them carries ~1e-12 noise
    np.testing.assert_array_equal(bars["volume"].round(8), ref["volume"].round(8))
    kept = resample_bars(minute.load(), "1h", partial="keep")
    assert len(kept) == 721 and kept["open"].iloc[0] == 67745.75  # first minute 14:15


def test_ticks_option_instantiates_and_loads() -> None:
    shared_file(AT_FUNDING)
    src = data_option_node("ticks", "source")
    assert isinstance(src, TickSource) and src.cache_dir is not None
    policy = data_option_node("ticks", "validation")
    bars, counts = policy.apply(TickSource(str(src.path), timeframe=src.timeframe,
                                           symbol=src.symbol, empty=src.empty,
                                           funding_path=src.funding.path).load())  # fmt: skip
    assert len(bars) > 2000 and (bars["funding_rate"] != 0).sum() > 2000
    assert counts["ohlc"] == 0


@pytest.mark.parametrize("per_bin", [0.01, 0.5, 3.0, 15.0, 16.0, 40.0, 1000.0])
def test_bin_starts_equal_searchsorted_for_any_density(per_bin: float) -> None:
    from cryptotrade.data.sources.resample_nb import bin_starts_nb

    rng = np.random.default_rng(int(per_bin * 100))
    step = 60 * 10**9
    n = 5_000
    span = int(n / per_bin * step)
    ts = np.sort(rng.integers(0, span, n)) + 1_700_000_000 * 10**9
    ts[10:20] = ts[10]  # equal timestamps
    ts[100] = ts[100] // step * step  # exactly on a bin edge
    ts = np.sort(ts)
    origin = int(ts[0]) // step * step
    n_bins = (int(ts[-1]) - origin) // step + 1
    edges = origin + step * np.arange(n_bins + 1, dtype=np.int64)
    want = np.searchsorted(ts, edges, side="left")
    want[-1] = n
    np.testing.assert_array_equal(bin_starts_nb(ts, origin, step, n_bins), want)


def _minute_file(tmp_path: Path, rows: pd.DataFrame) -> str:
    path = tmp_path / "minutes.csv"
    rows.to_csv(path, index=False)
    return str(path)


def test_resample_to_refuses_duplicate_or_non_finite_minutes(tmp_path: Path) -> None:
    # aggregation happens before validation sees the bars: a duplicated minute made up for a
    # missing one (the hour counted as complete, its volume double-counted) and a NaN high was
    # swallowed by max(); validation then saw clean hourly bars and reported no repair at all
    idx = pd.date_range("2024-01-01", periods=120, freq="1min", tz="UTC")
    c = np.arange(120) + 100.0
    rows = pd.DataFrame({"date": idx, "open": c, "high": c + 1, "low": c - 1, "close": c,
                         "volume": 1.0})  # fmt: skip
    dup = pd.concat([rows.iloc[:11], rows.iloc[10:11], rows.iloc[12:]])
    with pytest.raises(ValueError, match="duplicate"):
        FileSource(_minute_file(tmp_path, dup), resample_to="1h").load()
    nan = rows.copy()
    nan.loc[5, "high"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FileSource(_minute_file(tmp_path, nan), resample_to="1h").load()
    clean = FileSource(_minute_file(tmp_path, rows), resample_to="1h").load()
    assert clean["volume"].tolist() == [60.0, 60.0] and clean["high"].iloc[0] == 160.0
