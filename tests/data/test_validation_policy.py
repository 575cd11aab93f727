"""ValidationPolicy: every defect rejected by default (naming rows and the setting), or repaired
by its configured policy and counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sources_testutil import data_option_node, make_bars

from cryptotrade.data.validation import COUNT_KEYS, DataValidationError, ValidationPolicy


def test_clean_bars_pass_unchanged_with_zero_counts() -> None:
    bars = make_bars()
    out, counts = ValidationPolicy().apply(bars)
    pd.testing.assert_frame_equal(out, bars)
    assert counts == dict.fromkeys(COUNT_KEYS, 0)


@pytest.mark.parametrize(
    ("policy", "value"),
    [
        ("unsorted", "shuffle"),
        ("duplicates", "drop"),
        ("non_finite", "zero"),
        ("non_positive", "abs"),
        ("ohlc", "fix"),
        ("long_gaps", "fill"),
    ],
)
def test_unknown_policy_is_refused_with_the_choices(policy: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"validation.{policy}='{value}'.*one of"):
        ValidationPolicy(**{policy: value})


def test_structure_errors_say_what_to_fix() -> None:
    naive = make_bars()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(DataValidationError, match=r"timezone-naive"):
        ValidationPolicy().apply(naive)
    with pytest.raises(DataValidationError, match=r"lack columns \['volume'\]"):
        ValidationPolicy().apply(make_bars().drop(columns="volume"))


def test_unsorted_rejected_then_sorted() -> None:
    bars = make_bars()
    shuffled = bars.iloc[[0, 1, 3, 2, 4, 5]]
    with pytest.raises(DataValidationError, match=r"backwards at 1 row\(s\): 3 .*unsorted=sort"):
        ValidationPolicy().apply(shuffled)
    out, counts = ValidationPolicy(unsorted="sort").apply(shuffled)
    pd.testing.assert_frame_equal(out, bars)
    assert counts["unsorted"] == 1


def test_duplicates_rejected_or_first_or_last_kept() -> None:
    bars = make_bars(4)
    dup = bars.iloc[[0, 1, 1, 2, 3]].copy()
    dup.iloc[2, dup.columns.get_loc("volume")] = 99.0  # the later copy differs
    with pytest.raises(DataValidationError, match=r"duplicate timestamps at 2 row\(s\): 1 .*2 \("):
        ValidationPolicy().apply(dup)
    first, counts = ValidationPolicy(duplicates="keep_first").apply(dup)
    assert counts["duplicates"] == 1 and first["volume"].tolist() == [10, 10, 10, 10]
    last, _ = ValidationPolicy(duplicates="keep_last").apply(dup)
    assert last["volume"].tolist() == [10, 99, 10, 10]


def test_non_finite_rejected_dropped_or_filled_from_previous_close() -> None:
    bars = make_bars(4, vwap=[100.5, 101.5, 102.5, 103.5])
    bars.iloc[2, bars.columns.get_loc("close")] = np.nan
    bars.iloc[2, bars.columns.get_loc("vwap")] = np.inf
    bars.iloc[1, bars.columns.get_loc("volume")] = np.nan
    with pytest.raises(DataValidationError, match=r"\['close', 'volume', 'vwap'\] at 2 row"):
        ValidationPolicy().apply(bars)
    dropped, counts = ValidationPolicy(non_finite="drop", long_gaps="keep").apply(bars)
    assert len(dropped) == 2 and counts["non_finite"] == 2 and counts["gaps_kept"] == 1
    filled, counts = ValidationPolicy(non_finite="fill").apply(bars)
    assert counts["non_finite"] == 2
    # row 2: close and vwap <- previous close 102; high stays 103.5 >= open 102
    assert filled["close"].iloc[2] == 102.0 and filled["vwap"].iloc[2] == 102.0
    assert filled["volume"].iloc[1] == 0.0
    assert filled["low"].iloc[2] == 101.5


def test_non_finite_fill_cannot_fill_the_first_row() -> None:
    bars = make_bars(3)
    bars.iloc[0, 0:4] = np.nan
    with pytest.raises(DataValidationError, match=r"no previous close.*non_finite=drop"):
        ValidationPolicy(non_finite="fill").apply(bars)


def test_non_positive_prices_and_negative_volume() -> None:
    bars = make_bars(5)
    bars.iloc[1, bars.columns.get_loc("low")] = 0.0
    bars.iloc[3, bars.columns.get_loc("volume")] = -1.0
    with pytest.raises(DataValidationError, match=r"2 row\(s\): 1 .*, 3 .*non_positive=drop"):
        ValidationPolicy().apply(bars)
    out, counts = ValidationPolicy(non_positive="drop", long_gaps="keep").apply(bars)
    assert counts["non_positive"] == 2 and len(out) == 3


def test_ohlc_bitmex_style_open_outside_range_widen_or_clip() -> None:
    bars = make_bars(3)
    # BitMEX: open = previous bucket's close, here above the bar's high
    bars.iloc[1, :4] = [105.0, 103.0, 101.0, 102.0]  # open, high, low, close
    with pytest.raises(
        DataValidationError, match=r"OHLC inconsistent .* at 1 row\(s\): 1 .*widen or clip"
    ):
        ValidationPolicy().apply(bars)
    wide, counts = ValidationPolicy(ohlc="widen").apply(bars)
    assert counts["ohlc"] == 1
    assert wide.iloc[1, :4].tolist() == [105.0, 105.0, 101.0, 102.0]
    clip, _ = ValidationPolicy(ohlc="clip").apply(bars)
    assert clip.iloc[1, :4].tolist() == [103.0, 103.0, 101.0, 102.0]


def test_ohlc_clip_refuses_high_below_low() -> None:
    bars = make_bars(2)
    bars.iloc[1, :4] = [101.0, 100.0, 103.0, 101.0]
    with pytest.raises(DataValidationError, match=r"high < low.*ohlc=widen"):
        ValidationPolicy(ohlc="clip").apply(bars)
    out, _ = ValidationPolicy(ohlc="widen").apply(bars)
    assert out.iloc[1, :4].tolist() == [101.0, 103.0, 100.0, 101.0]


def test_gaps_filled_with_flat_bars_at_previous_close_and_zero_volume() -> None:
    bars = make_bars(
        6, trades=[5, 5, 5, 5, 5, 5], vwap=[1, 2, 3, 4, 5, 6], regime=[0, 0, 1, 1, 2, 2]
    )
    gappy = bars.drop(bars.index[[2, 3]])  # two missing bars after 01:00
    with pytest.raises(
        DataValidationError,
        match=r"longest 2 bars\) end at 1 row\(s\): 2 \(2024-01-01T04"
        r".*fill_gaps=2.*long_gaps=keep",
    ):
        ValidationPolicy().apply(gappy)
    out, counts = ValidationPolicy(fill_gaps=2).apply(gappy)
    assert out.index.equals(bars.index)
    assert counts["gaps_filled"] == 1 and counts["bars_filled"] == 2
    filled = out.iloc[2:4]
    prev_close = bars["close"].iloc[1]
    for col in ("open", "high", "low", "close", "vwap"):
        assert (filled[col] == prev_close).all(), col
    assert (filled["volume"] == 0).all() and (filled["trades"] == 0).all()
    assert (filled["regime"] == 0).all()  # carried from the bar before the gap
    pd.testing.assert_frame_equal(out.drop(out.index[2:4]), gappy)


def test_long_gaps_kept_and_counted_short_ones_filled() -> None:
    bars = make_bars(10)
    gappy = bars.drop(bars.index[[1, 4, 5, 6]])  # a 1-bar gap and a 3-bar gap
    with pytest.raises(
        DataValidationError, match=r"more than 1 missing.*1 row\(s\): 3 \(2024-01-01T07"
    ):
        ValidationPolicy(fill_gaps=1).apply(gappy)
    out, counts = ValidationPolicy(fill_gaps=1, long_gaps="keep").apply(gappy)
    assert counts == {
        **dict.fromkeys(COUNT_KEYS, 0),
        "gaps_filled": 1,
        "bars_filled": 1,
        "gaps_kept": 1,
        "bars_missing": 3,
    }
    assert len(out) == 7


def test_off_grid_timestamps_always_rejected() -> None:
    bars = make_bars(5)
    idx = bars.index.to_list()
    idx[3] = idx[3] + pd.Timedelta(minutes=30)
    bars.index = pd.DatetimeIndex(idx, name="date")
    with pytest.raises(DataValidationError, match=r"off the 1h grid.*no policy repairs"):
        ValidationPolicy(fill_gaps=100, long_gaps="keep").apply(bars)


def test_explicit_timeframe_detects_gaps_the_inferred_one_would_not() -> None:
    bars = make_bars(4, freq="2h")
    assert ValidationPolicy().apply(bars)[1]["bars_filled"] == 0
    out, counts = ValidationPolicy(timeframe="1h", fill_gaps=1).apply(bars)
    assert counts["bars_filled"] == 3 and len(out) == 7


def test_error_lists_at_most_max_rows() -> None:
    bars = make_bars(20)
    bars["high"] = bars["low"] - 1
    with pytest.raises(DataValidationError, match=r"20 row\(s\): 0 .*, 2 \(.* and 17 more"):
        ValidationPolicy(max_rows_listed=3).apply(bars)


def test_repairs_compose_in_order() -> None:
    bars = make_bars(6)
    messy = bars.iloc[[0, 2, 1, 1, 5]].copy()  # unsorted, duplicate, 2-bar gap
    messy.iloc[0, messy.columns.get_loc("open")] = 200.0  # open above high
    out, counts = ValidationPolicy(
        unsorted="sort", duplicates="keep_first", ohlc="widen", fill_gaps=2
    ).apply(messy)
    assert counts["unsorted"] == 1 and counts["duplicates"] == 1 and counts["ohlc"] == 1
    assert counts["bars_filled"] == 2 and out.index.equals(bars.index)
    assert out["high"].iloc[0] == 200.0


def test_file_option_validation_node_instantiates() -> None:
    policy = data_option_node("file", "validation")
    assert isinstance(policy, ValidationPolicy)
    assert policy.fill_gaps == 6 and policy.long_gaps == "keep" and policy.timeframe is None


def test_integer_regime_label_stays_integer_through_repairs() -> None:
    bars = make_bars(5)
    bars["regime"] = np.array([0, 0, 1, 1, 2], dtype=np.int8)
    bars["volume"] = np.arange(5)  # integer volume (BitMEX contracts) becomes float64
    gappy = bars.drop(bars.index[2])
    out, counts = ValidationPolicy(fill_gaps=1).apply(gappy)
    assert out["regime"].dtype == np.int8 and out["regime"].tolist() == [0, 0, 0, 1, 2]
    assert out["volume"].dtype == np.float64 and out["volume"].tolist() == [0, 1, 0, 3, 4]
    assert counts["bars_filled"] == 1
