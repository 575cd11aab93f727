"""Every bad input file fails with one line naming the file, the column or row, and the fix,
before anything is computed or cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sources_testutil import make_bars

from cryptotrade.data.dataset import build_dataset
from cryptotrade.data.features import FeatureSet
from cryptotrade.data.sources import FileSource
from cryptotrade.data.spec import DataSpec
from cryptotrade.data.splits import ChronoSplit
from cryptotrade.data.validation import ValidationPolicy
from cryptotrade.errors import DataError

MINIMAL = {"ret_1": {"kind": "log_return", "lag": 1}, "vol": {"kind": "volatility", "window": 5}}


def _csv(path: Path, n: int = 60) -> pd.DataFrame:
    bars = make_bars(n)
    table = bars.reset_index()
    table["date"] = table["date"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    table.to_csv(path, index=False)
    return table


def _build(path: Path, cache: Path, features: FeatureSet | None = None, **source_kw) -> None:
    spec = DataSpec(FileSource(str(path), **source_kw), ValidationPolicy(), ChronoSplit())
    build_dataset(
        spec, features or FeatureSet(MINIMAL), cache_dir=cache, fingerprint="bad-input-test"
    )


def _fails(path: Path, tmp_path: Path, *needles: str, **kw) -> str:
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        _build(path, cache, **kw)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    assert not cache.exists() or not any(cache.iterdir()), "a failed build left a cache file"
    return message


def test_a_good_file_builds_and_is_cached(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    _csv(path)
    _build(path, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_text_in_a_price_column(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    table = _csv(path)
    table["close"] = table["close"].astype(object)
    table.loc[17, "close"] = "abc"
    table.to_csv(path, index=False)
    _fails(path, tmp_path, "column 'close' row 17", "(CSV line 19)", "'abc'", "not a number")


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("")
    _fails(path, tmp_path, "is empty", "data.source.path")


def test_a_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("date,open,high,low,close,volume\n")
    _fails(path, tmp_path, "no rows")


def test_unbalanced_quotes(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    _csv(path)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)  # a quote that never closes
    path.write_text("\n".join(lines) + "\n")
    _fails(path, tmp_path, "not well-formed CSV", "row")


def test_an_unparseable_date(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    table = _csv(path)
    table.loc[9, "date"] = "next tuesday"
    table.to_csv(path, index=False)
    _fails(path, tmp_path, "time column 'date' row 9", "'next tuesday'", "not an ISO date")


def test_a_semicolon_delimited_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    _csv(tmp_path / "plain.csv").to_csv(path, index=False, sep=";")
    _fails(path, tmp_path, "';'-delimited", "data.source.csv_delimiter=';'")
    _build(path, tmp_path / "ok", csv_delimiter=";")  # the named fix works


def test_a_one_row_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    _csv(path, n=1)
    _fails(path, tmp_path, "1 distinct time(s)", "data.source.timeframe")
    # with the bar length given, the warm-up is counted in the file's own bars (1h), not in
    # minutes as when the base timeframe was guessed from a single row
    features = FeatureSet(
        MINIMAL,
        higher={"h4": {"timeframe": "4h", "indicators": {"r": {"kind": "log_return"}}}},
    )
    need = features.warmup(make_bars(300))
    message = _fails(path, tmp_path, "validated bar(s)", timeframe="1h", features=features)
    assert f"need {need} warm-up bars" in message
    assert need < 100


def test_a_missing_file_and_a_wrong_time_column(tmp_path: Path) -> None:
    _fails(tmp_path / "absent.csv", tmp_path, "does not exist", "data.source.path")
    path = tmp_path / "bars.csv"
    _csv(path).rename(columns={"date": "when"}).to_csv(path, index=False)
    _fails(path, tmp_path, "no time column", "data.source.timestamp_column")


def test_a_validation_rejection_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    table = _csv(path)
    table.loc[30, ["open", "high", "low", "close"]] *= 1000  # one bar x1000, OHLC consistent
    table.to_csv(path, index=False)
    _fails(path, tmp_path, "price jumps", "1 row(s): 30", "data.validation.outliers=clip")


def test_a_constant_feature_is_refused_naming_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    table = _csv(path)
    table["volume"] = 0.0  # a mark-price file
    table.to_csv(path, index=False)
    features = FeatureSet({**MINIMAL, "volume": {"kind": "volume", "window": 5}})
    _fails(path, tmp_path, "['volume']", "features.constant=drop", features=features)


def test_numeric_check_leaves_empty_cells_to_validation(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    table = _csv(path)
    table.loc[3, "volume"] = np.nan
    table.to_csv(path, index=False)
    _fails(path, tmp_path, "NaN/inf values in columns ['volume']", "non_finite")


def test_a_trade_dump_with_text_in_the_price_column(tmp_path: Path) -> None:
    from cryptotrade.data.sources import TickSource

    path = tmp_path / "trades.csv"
    path.write_text(
        "timestamp,symbol,side,size,price\n"
        "2024-01-01T00:00:01Z,XBTUSD,Buy,10,42000.5\n"
        "2024-01-01T00:00:02Z,XBTUSD,Sell,5,oops\n"
    )
    with pytest.raises(DataError, match=r"trades.csv: column 'price' row 1 \(CSV line 3\)"):
        TickSource(str(path), cache_dir=str(tmp_path / "cache")).load()
    assert not (tmp_path / "cache").exists()
    with pytest.raises(DataError, match=r"absent.csv does not exist; set data.source.path"):
        TickSource(str(tmp_path / "absent.csv")).load()
