"""Mark prices from files: a bars-file column or a mark file aligned to bar closes without
look-ahead, coverage policy, bad values, settings, resampling, dataset cache and fingerprint."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sources_testutil import make_bars

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.dataset import build_dataset, load_cached
from cryptotrade.data.features import FeatureSet
from cryptotrade.data.sources import FileSource
from cryptotrade.data.sources.mark import load_marks
from cryptotrade.data.spec import DataSpec
from cryptotrade.data.splits import ChronoSplit
from cryptotrade.data.validation import ValidationPolicy
from cryptotrade.errors import ConfigError, DataError

ISO = "%Y-%m-%dT%H:%M:%SZ"


def _write_bars(path: Path, bars: pd.DataFrame) -> str:
    table = bars.reset_index()
    table["date"] = table["date"].dt.strftime(ISO)
    table.to_csv(path, index=False)
    return str(path)


def _write_marks(path: Path, start: str, freq: str, values, time_column: str = "timestamp") -> str:
    times = pd.date_range(start, periods=len(values), freq=freq, tz="UTC")
    table = pd.DataFrame({time_column: times.strftime(ISO), "close": np.asarray(values, float)})
    table.to_csv(path, index=False)
    return str(path)


# ------------------------------------------------------------------ loading and alignment
def test_a_mark_column_of_the_bars_file_is_the_mark_at_each_bar_close(tmp_path: Path) -> None:
    marks = [200.0, 201.5, 199.0, 202.0, 203.0, 204.0]
    path = _write_bars(tmp_path / "bars.csv", make_bars(6, markPrice=marks))
    bars = FileSource(path, mark_column="markPrice").load()
    assert bars["mark_price"].tolist() == marks
    assert bars.attrs["mark"] == {"path": path, "column": "markPrice"}
    # only the kept rows must hold a mark: a bad mark outside start/end is no error
    bad = _write_bars(tmp_path / "bad.csv", make_bars(6, markPrice=[np.nan, *marks[1:]]))
    kept = FileSource(bad, mark_column="markPrice", start="2024-01-01T01:00").load()
    assert kept["mark_price"].tolist() == marks[1:]


def test_a_mark_file_gives_the_last_mark_observed_at_or_before_each_close(tmp_path: Path) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(4))  # 1h bars opening 00:00 .. 03:00
    # 15-minute open-labelled mark bars: the row at 00:45 holds the mark at 01:00
    quarter = _write_marks(tmp_path / "q.csv", "2024-01-01", "15min", 300.0 + np.arange(16))
    loaded = FileSource(bars, mark_path=quarter).load()
    assert loaded["mark_price"].tolist() == [303.0, 307.0, 311.0, 315.0]
    summary = loaded.attrs["mark"]
    assert summary["column"] == "close" and summary["interval"] == "15min"
    assert summary["first"] == "2024-01-01T00:15:00+00:00"  # observed at the row's bar end
    assert summary["bars_uncovered"] == 0
    # the same file read as end-labelled (each mark seen at its row time) is one row earlier
    # for every bar but has no mark at 04:00, the last bar's close
    with pytest.raises(DataError, match=r"bars.csv: 1 bar\(s\) \(closing 2024-01-01T04:00.*"):
        FileSource(bars, mark_path=quarter, mark_timestamp_convention="end").load()


def test_end_labelled_bars_and_marks_shift_together(tmp_path: Path) -> None:
    # BitMEX style: both files stamp a bucket by its END; bar 00:00-01:00 is stamped 01:00 and
    # its closing mark is the mark row stamped 01:00
    raw = make_bars(4, start="2024-01-01 01:00")
    path = _write_bars(tmp_path / "end.csv", raw)
    marks = _write_marks(tmp_path / "m.csv", "2024-01-01 01:00", "1h", [51.0, 52.0, 53.0, 54.0])
    loaded = FileSource(path, timestamp_convention="end", mark_path=marks).load()
    assert loaded.index[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert loaded["mark_price"].tolist() == [51.0, 52.0, 53.0, 54.0]


def test_point_samples_named_markprice_are_found_and_filtered_by_symbol(tmp_path: Path) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(2))
    times = pd.date_range("2024-01-01 00:30", periods=4, freq="30min", tz="UTC").strftime(ISO)
    table = pd.DataFrame(
        {
            "timestamp": list(times) * 2,
            "symbol": ["XBTUSD"] * 4 + ["ETHUSD"] * 4,
            "markPrice": [10.0, 11.0, 12.0, 13.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    table.to_csv(tmp_path / "ticker.csv", index=False)
    source = FileSource(
        bars,
        symbol="XBTUSD",
        mark_path=str(tmp_path / "ticker.csv"),
        mark_timestamp_convention="end",
    )
    assert source.load()["mark_price"].tolist() == [11.0, 13.0]  # at 01:00 and 02:00
    with pytest.raises(DataError, match=r"row 4 .* repeats the time.*mark_symbol"):
        FileSource(
            bars, mark_path=str(tmp_path / "ticker.csv"), mark_timestamp_convention="end"
        ).load()


# ------------------------------------------------------------------ mark candles' own range
def _write_candles(path: Path, start: str, freq: str, close, high, low) -> str:
    times = pd.date_range(start, periods=len(close), freq=freq, tz="UTC")
    table = pd.DataFrame(
        {"timestamp": times.strftime(ISO), "open": close, "high": high, "low": low, "close": close}
    )
    table.to_csv(path, index=False)
    return str(path)


def test_mark_candles_give_each_bar_the_marks_own_high_and_low(tmp_path: Path) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(2))  # 1h bars opening 00:00, 01:00
    # 15-minute open-labelled mark candles: bar 0 holds rows 00:00 .. 00:45, bar 1 01:00 .. 01:45
    close = np.array([300.0, 301, 302, 303, 304, 305, 306, 307, 308])
    high = close + np.array([1.0, 2, 9, 1, 1, 1, 1, 1, 50])  # 02:00's spike is after bar 1
    low = close - np.array([1.0, 1, 1, 7, 1, 1, 3, 1, 50])
    path = _write_candles(tmp_path / "c.csv", "2024-01-01", "15min", close, high, low)
    loaded = FileSource(bars, mark_path=path).load()
    assert loaded["mark_price"].tolist() == [303.0, 307.0]
    assert loaded["mark_high"].tolist() == [311.0, 308.0]  # 302 + 9; 307 + 1
    assert loaded["mark_low"].tolist() == [296.0, 303.0]  # 303 - 7; 304 - 1
    assert loaded.attrs["mark"]["range"] == "mark candles' own high/low"
    assert loaded.attrs["mark"]["bars_without_range"] == 0
    # no look-ahead: changing a candle after a bar's close changes nothing of that bar
    high[4], low[4] = 999.0, 1.0
    later = FileSource(bars, mark_path=_write_candles(tmp_path / "d.csv", "2024-01-01", "15min",
                                                     close, high, low)).load()  # fmt: skip
    assert later["mark_high"].iloc[0] == 311.0 and later["mark_low"].iloc[0] == 296.0
    assert later["mark_high"].iloc[1] == 999.0 and later["mark_low"].iloc[1] == 1.0


def test_mark_candles_longer_than_the_bars_or_closes_only_give_no_range(tmp_path: Path) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(4))
    c = np.array([300.0, 310.0])
    four = _write_candles(tmp_path / "4h.csv", "2023-12-31 20:00", "4h", c, c + 5, c - 5)
    loaded = FileSource(bars, mark_path=four, mark_coverage="warn").load()
    assert "mark_high" not in loaded and "mark_low" not in loaded
    assert loaded.attrs["mark"]["range"].startswith("not used: mark candles of 4h are longer")
    closes = _write_marks(tmp_path / "m.csv", "2024-01-01", "1h", [1.0, 2.0, 3.0, 4.0])
    only = FileSource(bars, mark_path=closes).load()
    assert "mark_high" not in only and only.attrs["mark"]["range"].startswith("none: mark closes")


def test_a_mark_candle_whose_close_is_outside_its_range_names_the_row(tmp_path: Path) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(2))
    c = np.array([300.0, 301.0, 302.0])
    bad = _write_candles(tmp_path / "c.csv", "2024-01-01", "1h", c, c + 1, [299.0, 301.5, 301.0])
    with pytest.raises(DataError, match=r"c.csv: mark candle row 1 \(CSV line 3\) has close "
                       r"301.0 outside \[low 301.5, high 302.0\]"):  # fmt: skip
        FileSource(bars, mark_path=bad).load()


def test_validation_gives_a_bar_without_its_mark_range_the_mark_itself() -> None:
    bars = make_bars(
        4,
        mark_price=[50.0, 51.0, 52.0, 53.0],
        mark_high=[50.5, np.nan, 54.0, 53.5],
        mark_low=[49.0, 50.0, 51.0, 52.0],
    )
    filled, _ = ValidationPolicy(non_finite="fill").apply(bars)
    assert filled["mark_high"].tolist() == [50.5, 51.0, 54.0, 53.5]
    # a filled gap is flat in the mark too: no range beyond the carried mark
    gappy = bars.fillna(55.0).drop(index=bars.index[2])
    repaired, _ = ValidationPolicy(fill_gaps=1).apply(gappy)
    assert repaired["mark_high"].tolist() == [50.5, 55.0, 51.0, 53.5]
    assert repaired["mark_low"].tolist() == [49.0, 50.0, 51.0, 52.0]
    with pytest.raises(DataError, match=r"prices <= 0"):
        ValidationPolicy().apply(bars.fillna(0.0))


# ------------------------------------------------------------------ coverage
def test_bars_without_a_fresh_mark_are_rejected_or_filled_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(6))  # closes 01:00 .. 06:00
    # hourly marks closing 02:00 and 03:00, then a gap (04:00 missing), then 05:00
    marks = tmp_path / "m.csv"
    times = pd.DatetimeIndex(["2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 04:00"])
    pd.DataFrame({"time": times.strftime(ISO), "close": [20.0, 30.0, 50.0]}).to_csv(
        marks, index=False
    )
    with pytest.raises(
        DataError,
        match=r"^\S*bars.csv: 3 bar\(s\) \(closing 2024-01-01T01:00:00\+00:00 \.\. "
        r"2024-01-01T06:00.*have no mark in \S*m.csv in the 1h before their close \(it covers "
        r"2024-01-01T02:00.* \.\. 2024-01-01T05:00.*mark_coverage=warn",
    ):
        FileSource(bars, mark_path=str(marks)).load()
    with caplog.at_level(logging.WARNING):
        loaded = FileSource(bars, mark_path=str(marks), mark_coverage="warn").load()
    # bar 0 (close 01:00) has no mark yet: its traded close 101; 04:00 and 06:00 carry forward
    assert loaded["mark_price"].tolist() == [101.0, 20.0, 30.0, 30.0, 50.0, 50.0]
    summary = loaded.attrs["mark"]
    assert (summary["bars_uncovered"], summary["bars_forward_filled"]) == (3, 2)
    assert summary["bars_traded_close"] == 1
    assert "2 take the last earlier mark, 1 the traded close" in loaded.attrs["warnings"][0]
    assert "mark_coverage=warn" in caplog.text
    # ... and the dataset summary reports it
    spec = DataSpec(
        FileSource(bars, mark_path=str(marks), mark_coverage="warn"),
        ValidationPolicy(),
        ChronoSplit(train=0.5, val=0.25, test=0.25),
    )
    meta = build_dataset(
        spec,
        FeatureSet({"t": {"kind": "time"}}, constant="keep"),
        cache_dir=None,
        fingerprint="cov",
    ).meta
    assert meta["mark"]["bars_forward_filled"] == 2 and "traded close" in meta["warnings"][0]


# ------------------------------------------------------------------ bad values and settings
@pytest.mark.parametrize(
    ("cell", "shown"), [("", "nan"), ("0", "0.0"), ("-5", "-5.0"), ("inf", "inf")]
)
def test_a_bad_mark_is_one_line_naming_file_column_row_and_fix(
    tmp_path: Path, cell: str, shown: str
) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(3))
    marks = tmp_path / "m.csv"
    marks.write_text(
        "timestamp,close\n2024-01-01T00:00:00Z,10\n2024-01-01T01:00:00Z,"
        f"{cell}\n2024-01-01T02:00:00Z,12\n"
    )
    with pytest.raises(DataError) as err:
        FileSource(bars, mark_path=str(marks)).load()
    text = str(err.value)
    assert "\n" not in text
    assert f"m.csv: mark column 'close' row 1 (CSV line 3) holds {shown}, not a positive" in text
    assert "fix or delete those rows" in text
    inline = _write_bars(tmp_path / "inline.csv", make_bars(3, mark=[10.0, 11.0, -1.0]))
    with pytest.raises(DataError, match=r"inline.csv: mark column 'mark' row 2 \(CSV line 4\)"):
        FileSource(inline, mark_column="mark").load()
    text_cell = tmp_path / "text.csv"
    text_cell.write_text("timestamp,close\n2024-01-01T00:00:00Z,10\n2024-01-01T01:00:00Z,abc\n")
    with pytest.raises(DataError, match=r"text.csv: column 'close' row 1 \(CSV line 3\) holds"):
        load_marks(text_cell)


def test_mark_settings_that_would_do_nothing_are_refused(tmp_path: Path) -> None:
    bars = _write_bars(tmp_path / "bars.csv", make_bars(3))
    with pytest.raises(ConfigError, match=r"mark_time_column is set but data\.source\.mark_path"):
        FileSource(bars, mark_time_column="t")
    with pytest.raises(ConfigError, match="mark_column='close' without a mark_path"):
        FileSource(bars, mark_column="close")
    with pytest.raises(ConfigError, match="mark_coverage='fill'; use reject or warn"):
        FileSource(bars, mark_path="m.csv", mark_coverage="fill")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mark_timestamp_convention='close'"):
        FileSource(bars, mark_path="m.csv", mark_timestamp_convention="close")  # type: ignore
    FileSource(bars, symbol="XBTUSD")  # `symbol` alone sets no mark setting
    with pytest.raises(DataError, match=r"lacks columns \['mark'\].*fix data.source.mark_column"):
        FileSource(bars, mark_column="mark").load()
    with pytest.raises(DataError, match=r"missing.csv does not exist; set data.source.mark_path"):
        FileSource(bars, mark_path=str(tmp_path / "missing.csv")).load()
    one = _write_marks(tmp_path / "one.csv", "2024-01-01", "1h", [5.0])
    with pytest.raises(DataError, match=r"one.csv has 1 mark row\(s\), too few"):
        FileSource(bars, mark_path=one).load()
    nocol = tmp_path / "nocol.csv"
    pd.DataFrame({"timestamp": ["2024-01-01"], "price": [1.0]}).to_csv(nocol, index=False)
    with pytest.raises(DataError, match=r"none of the columns.*set data.source.mark_column"):
        FileSource(bars, mark_path=str(nocol)).load()


def test_validation_treats_a_mark_column_as_a_price_that_carries_forward() -> None:
    # a source other than FileSource could hand over bad marks: the policies cover them
    bars = make_bars(5, mark_price=[50.0, np.nan, 52.0, 0.0, 54.0])
    with pytest.raises(DataError, match=r"NaN/inf values in columns \['mark_price'\]"):
        ValidationPolicy().apply(bars)
    policy = ValidationPolicy(non_finite="fill", non_positive="drop", long_gaps="keep")
    filled, counts = policy.apply(bars)
    assert filled["mark_price"].tolist() == [50.0, 50.0, 52.0, 54.0]  # the previous mark
    assert counts["non_finite"] == 1 and counts["non_positive"] == 1
    # a gap filled with flat bars keeps the last mark (the bars are flat at the last close)
    gappy = make_bars(4, mark_price=[60.0, 61.0, 62.0, 63.0]).drop(index=make_bars(4).index[2])
    repaired, _ = ValidationPolicy(fill_gaps=1).apply(gappy)
    assert repaired["mark_price"].tolist() == [60.0, 61.0, 61.0, 63.0]


# ------------------------------------------------------------------ resampling
def test_resampled_bars_take_the_mark_of_their_last_input_bar(tmp_path: Path) -> None:
    minutes = make_bars(120, freq="1min", mark=1000.0 + np.arange(120))
    inline = _write_bars(tmp_path / "m1.csv", minutes)
    hourly = FileSource(inline, mark_column="mark", resample_to="1h").load()
    assert hourly["mark_price"].tolist() == [1059.0, 1119.0]  # minutes 59 and 119
    # a separate 1-minute mark file aligned to the hourly closes gives the same marks
    marks = _write_marks(tmp_path / "mk.csv", "2024-01-01", "1min", 1000.0 + np.arange(120))
    separate = FileSource(inline, mark_path=marks, resample_to="1h").load()
    assert separate["mark_price"].tolist() == hourly["mark_price"].tolist()


# ------------------------------------------------------------------ dataset, cache, fingerprint
def _mark_spec(tmp_path: Path, n: int = 60) -> DataSpec:
    bars = make_bars(n, mark=150.0 + np.sin(np.arange(n)))
    return DataSpec(
        FileSource(_write_bars(tmp_path / "bars.csv", bars), mark_column="mark"),
        ValidationPolicy(),
        ChronoSplit(train=0.5, val=0.25, test=0.25),
    )


def test_marks_reach_every_split_and_survive_the_cache(tmp_path: Path) -> None:
    fs = FeatureSet({"t": {"kind": "time"}, "r": {"kind": "log_return"}})
    ds = build_dataset(_mark_spec(tmp_path), fs, cache_dir=tmp_path, fingerprint="mk")
    expected = 150.0 + np.sin(np.arange(60))
    got = np.concatenate([m.mark_price for m in ds.splits.values()])
    np.testing.assert_array_equal(got, expected[1:])  # log_return drops one warm-up bar
    assert ds.meta["mark"]["column"] == "mark"
    cached = load_cached(tmp_path / "dataset-mk.parquet")
    for name, split in ds.splits.items():
        np.testing.assert_array_equal(cached.splits[name].mark_price, split.mark_price)
        assert cached.splits[name].mark_price.dtype == np.float64
    assert cached.train.mark_high is None  # a mark column of closes only: no candle range
    # a cache written before marks existed (no mark_price column) still loads, without marks
    old = tmp_path / "dataset-old.parquet"
    table = pq.read_table(tmp_path / "dataset-mk.parquet")
    pq.write_table(table.drop(["mark_price"]), old)
    legacy = load_cached(old)
    assert legacy.train.mark_price is None
    np.testing.assert_array_equal(legacy.train.close, ds.train.close)


def _compose(*overrides: str):
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_the_mark_options_compose_instantiate_and_change_the_fingerprint(tmp_path: Path) -> None:
    from cryptotrade.components import data_fingerprint

    marks = _write_marks(tmp_path / "m.csv", "2024-01-01", "1h", [1.0, 2.0])
    plain = _compose("data=file")
    with_file = _compose(
        "data=file",
        f"data.source.mark_path={marks}",
        "data.source.mark_time_column=timestamp",
        "data.source.mark_timestamp_convention=end",
        "data.source.mark_coverage=warn",
    )
    other_column = _compose(
        "data=file", f"data.source.mark_path={marks}", "data.source.mark_column=open"
    )
    source = instantiate(with_file.data.source)
    assert source.mark_file.path == marks and source.mark_file.coverage == "warn"
    assert source.mark_file.convention == "end" and source.mark_file.time_column == "timestamp"
    assert instantiate(plain.data.source).mark_file is None
    prints = {data_fingerprint(c) for c in (plain, with_file, other_column)}
    assert len(prints) == 3  # any mark setting names another cached dataset
    bitmex = _compose("data=bitmex", "data.source.mark_column=markPrice")
    assert instantiate(bitmex.data.source).mark_column == "markPrice"
    with pytest.raises(Exception, match="mark_coverage"):
        instantiate(_compose("data=file", "data.source.mark_coverage=maybe").data.source)
