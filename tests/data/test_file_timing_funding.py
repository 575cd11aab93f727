"""File sources: bar length inferred and checked, naive times, funding coverage and layouts,
outlier and constant-feature policies, open mappings on the command line, data=bitmex."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from sources_testutil import make_bars, shared_file

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.dataset import build_dataset, load_bars
from cryptotrade.data.features import FeatureSet
from cryptotrade.data.sources import FileSource, load_funding
from cryptotrade.data.spec import DataSpec
from cryptotrade.data.splits import ChronoSplit
from cryptotrade.data.validation import ValidationPolicy
from cryptotrade.errors import DataError

BITMEX_1M = "bitmex_XBTUSD_1m_2019.parquet"
BITMEX_FUNDING = "bitmex_XBTUSD_funding_2016-05-14_2020-11-05.csv"
DERIBIT = Path(__file__).resolve().parent / "fixtures" / "deribit_BTC-PERPETUAL_funding_1h.csv"
MINIMAL = {"ret_1": {"kind": "log_return", "lag": 1}, "vol": {"kind": "volatility", "window": 5}}


def _write(path: Path, bars: pd.DataFrame, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> Path:
    table = bars.reset_index()
    table["date"] = table["date"].dt.strftime(fmt)
    table.to_csv(path, index=False)
    return path


def _compose(*overrides: str):
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


# ------------------------------------------------------------------ bar length and time zone
def test_end_labelled_bitmex_minutes_open_at_2358_without_a_timeframe() -> None:
    path = str(shared_file(BITMEX_1M))
    bars = FileSource(path, timestamp_convention="end", end="2019-01-02").load()
    assert bars.index[0] == pd.Timestamp("2018-12-31 23:59", tz="UTC")
    assert bars.attrs["timeframe"] == "1min"
    with pytest.raises(DataError, match=r"timeframe=1h but its rows are 1min apart.*=1min"):
        FileSource(path, timestamp_convention="end", timeframe="1h").load()


def test_naive_times_are_refused_unless_the_zone_is_set_utc_included(tmp_path: Path) -> None:
    """Guessing UTC shifted local times by 1-2 h without failing: a zone must now be named."""
    path = _write(tmp_path / "local.csv", make_bars(6, start="2024-01-10"), "%Y-%m-%d %H:%M")
    with pytest.raises(
        DataError,
        match=r"local.csv: times in 'date' have no timezone .* set data.source.timezone=UTC if "
        r"they are UTC, or to the zone they were written in \(e.g. Europe/Berlin\)$",
    ):
        FileSource(str(path)).load()
    utc = FileSource(str(path), timezone="UTC").load()
    assert utc.index[0] == pd.Timestamp("2024-01-10", tz="UTC") and utc.attrs["warnings"] == []
    berlin = FileSource(str(path), timezone="Europe/Berlin").load()
    assert (utc.index - berlin.index == pd.Timedelta(hours=1)).all()  # CET = UTC+1 in January
    assert berlin.attrs["warnings"] == []
    aware = _write(tmp_path / "aware.csv", make_bars(6))  # ...Z: the zone is written
    ignored = FileSource(str(aware), timezone="Europe/Berlin").load()
    assert "data.source.timezone=Europe/Berlin is ignored" in ignored.attrs["warnings"][0]
    # a wall-clock time inside the spring DST hole does not exist in that zone
    hole = _write(tmp_path / "hole.csv", make_bars(4, start="2024-03-31 01:00"), "%Y-%m-%d %H:%M")
    with pytest.raises(DataError, match=r"hole.csv: time column 'date' cannot be read in timezone"):
        FileSource(str(hole), timezone="Europe/Berlin").load()


# ------------------------------------------------------------------ funding coverage
def test_bars_after_the_funding_file_are_an_error_or_a_counted_warning(tmp_path: Path) -> None:
    funding = str(shared_file(BITMEX_FUNDING))
    path = _write(tmp_path / "late.csv", make_bars(72, start="2020-11-04"))
    with pytest.raises(
        DataError, match=r"late.csv: 36 bar\(s\) \(2020-11-05T12:00.*covers 2016-05-14.*2020-11-05"
    ):
        FileSource(str(path), funding_path=funding, symbol="XBTUSD").load()
    source = FileSource(str(path), funding_path=funding, symbol="XBTUSD", funding_coverage="warn")
    spec = DataSpec(source, ValidationPolicy(), ChronoSplit())
    meta = build_dataset(spec, FeatureSet(MINIMAL), cache_dir=None, fingerprint="f").meta
    assert meta["funding"]["bars_uncovered"] == 36
    assert meta["funding"]["last"] == "2020-11-05T04:00:00+00:00"
    assert meta["funding"]["settlements"] == 4_866
    assert meta["funding"]["settlements_on_bars"] == 4  # 11-04 04/12/20 and 11-05 04:00
    assert "36 bar(s) outside the funding file" in meta["warnings"][0]


def test_deribit_hourly_funding_through_the_time_rate_and_interval_settings(
    tmp_path: Path,
) -> None:
    table = pd.read_csv(DERIBIT)
    path = _write(tmp_path / "deribit_bars.csv", make_bars(48, start="2024-01-01 01:00"))
    with pytest.raises(DataError, match=r"deribit_BTC-PERPETUAL.*data.source.funding_time_column"):
        FileSource(str(path), funding_path=str(DERIBIT)).load()
    hourly = FileSource(
        str(path),
        funding_path=str(DERIBIT),
        funding_time_column="timestamp",
        funding_rate_column="interest_1h",
    ).load()
    np.testing.assert_array_equal(hourly["funding_rate"], table["interest_1h"])
    assert hourly.attrs["funding"]["interval"] == "1h"
    # the 8h-quoted rate, settled every hour: 1/8 of it per row
    per_8h = FileSource(
        str(path),
        funding_path=str(DERIBIT),
        funding_time_column="timestamp",
        funding_rate_column="interest_8h",
        funding_rate_interval="8h",
    ).load()
    np.testing.assert_allclose(per_8h["funding_rate"], table["interest_8h"] / 8)
    with pytest.raises(DataError, match=r"no column 'rate'.*data.source.funding_rate_column"):
        load_funding(DERIBIT, timestamp_column="timestamp", rate_column="rate")


# ------------------------------------------------------------------ outliers, constant features
def test_a_bar_x1000_is_rejected_clipped_or_kept_and_counted() -> None:
    bars = make_bars(200)
    rng = np.random.default_rng(0)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    bars[["open", "high", "low", "close"]] = walk[:, None] * [1.0, 1.005, 0.995, 1.0]
    bars.iloc[120, :4] *= 1000
    with pytest.raises(DataError, match=r"price jumps.*1 row\(s\): 120 "):
        ValidationPolicy().apply(bars)
    kept, counts = ValidationPolicy(outliers="keep").apply(bars)
    assert counts["outliers"] == 1 and kept["close"].iloc[120] == bars["close"].iloc[120]
    clipped, counts = ValidationPolicy(outliers="clip").apply(bars)
    assert counts["outliers"] in (1, 2)  # the bar, and perhaps the one after it, pulled in
    assert clipped["high"].max() < 5 * walk.max()  # within exp(100 robust std), not x1000
    assert (clipped["high"] >= clipped[["open", "close"]].max(axis=1)).all()
    pd.testing.assert_frame_equal(clipped.iloc[122:], bars.iloc[122:])


def test_zero_volume_is_counted_and_constant_features_dropped_by_policy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Mark:
        def load(self) -> pd.DataFrame:
            bars = make_bars(80)
            bars["volume"] = 0.0
            return bars

    spec = DataSpec(Mark(), ValidationPolicy(), ChronoSplit())
    features = FeatureSet(
        {**MINIMAL, "obv": {"kind": "obv", "window": 5}, "volume": {"kind": "volume"}},
        constant="drop",
    )
    with caplog.at_level(logging.WARNING):
        meta = build_dataset(spec, features, cache_dir=None, fingerprint="m").meta
    assert meta["repairs"]["volume_all_zero"] == 1
    assert "volume is zero on all 80 bars" in caplog.text
    assert meta["constant_features"] == ["obv", "volume"]
    assert meta["features"] == ["ret_1", "vol"]


# ------------------------------------------------------------------ config
def test_open_mappings_take_new_keys_without_plus_and_other_keys_stay_strict() -> None:
    cfg = _compose("data=file", "data.source.columns={homeNotional:volume}")
    assert instantiate(cfg.data.source).columns == {"homeNotional": "volume"}
    cfg = _compose("data=binance", "data.source.options={defaultType:swap}")
    assert dict(cfg.data.source.options) == {"defaultType": "swap"}
    with pytest.raises(ConfigCompositionException, match=r"data\.source\.colums"):
        _compose("data=file", "data.source.colums={homeNotional:volume}")


def test_one_timeframe_grammar_for_features_and_sources() -> None:
    cfg = _compose("features.base_timeframe=15min")
    assert instantiate(cfg.features).base_seconds == 900


def test_data_bitmex_option_loads_hourly_inverse_bars_with_funding() -> None:
    shared_file(BITMEX_1M)
    cfg = _compose("data=bitmex", "data.source.end=2019-02-01")
    raw, bars, _ = load_bars(instantiate(cfg.data))
    assert bars.index[0] == pd.Timestamp("2019-01-01", tz="UTC")  # 23:59 minute: partial hour
    assert bars.index[-1] == pd.Timestamp("2019-01-31 23:00", tz="UTC")
    assert raw.attrs["timeframe"] == "1h"
    assert raw.attrs["funding"]["settlements_on_bars"] == 31 * 3
    assert raw.attrs["funding"]["bars_uncovered"] == 0
    paid = bars["funding_rate"][bars["funding_rate"] != 0]
    assert set(paid.index.hour) == {4, 12, 20}


@pytest.mark.parametrize("freq", ["1h", "15min"])
def test_dst_repeat_hint_names_data_source_timezone_not_keep_first(tmp_path: Path, freq) -> None:
    """Berlin wall-clock times across the 2024-10-27 fall-back, declared UTC: the repeated hour
    is a duplicate (hourly) or a jump back (15 min); the fix is the zone, not dropping rows."""
    utc = pd.date_range("2024-10-26 22:00", periods=16 * (4 if freq == "15min" else 1), freq=freq,
                        tz="UTC")  # fmt: skip
    bars = make_bars(len(utc), start="2024-10-26 22:00", freq=freq)
    bars.index = utc.tz_convert("Europe/Berlin").tz_localize(None).rename("date")
    path = _write(tmp_path / "berlin.csv", bars, "%Y-%m-%d %H:%M")
    with pytest.raises(DataError, match=r"set data.source.timezone to the zone") as err:
        spec = DataSpec(FileSource(str(path), timezone="UTC"), ValidationPolicy(), ChronoSplit())
        load_bars(spec)
    assert "keep_first" not in str(err.value) and "unsorted=sort" not in str(err.value)
    fixed = load_bars(
        DataSpec(FileSource(str(path), timezone="Europe/Berlin"), ValidationPolicy(), ChronoSplit())
    )[1]
    assert list(fixed.index) == list(utc)  # the zone turns the repeats into distinct times


def test_a_weekday_duplicate_keeps_the_keep_first_hint(tmp_path: Path) -> None:
    bars = make_bars(10, start="2024-01-10")  # a Wednesday: not a DST change
    bars = pd.concat([bars.iloc[:5], bars.iloc[4:]])
    path = _write(tmp_path / "dup.csv", bars)
    with pytest.raises(DataError, match="duplicates=keep_first or keep_last"):
        load_bars(DataSpec(FileSource(str(path)), ValidationPolicy(), ChronoSplit()))
