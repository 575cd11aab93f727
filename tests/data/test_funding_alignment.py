"""Funding history: loading every known layout and aligning settlements to bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sources_testutil import shared_file

from cryptotrade.data.sources import align_funding, load_funding

HOUR = 3_600 * 10**9


def hours(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps), tz="UTC").as_unit("ns")


def rates(pairs: dict[str, float]) -> pd.Series:
    return pd.Series(list(pairs.values()), index=hours(*pairs))


def test_settlement_at_a_bar_open_lands_on_that_bar() -> None:
    bars = hours("2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00")
    funding = rates({
        "2023-12-31 16:00": 9.0,  # before the first bar: out of range
        "2024-01-01 00:00": 0.1,  # exactly at a bar's open
        "2024-01-01 01:00:00.007": 0.2,  # Binance stamps can be a few ms late
        "2024-01-01 02:00:01.5": 9.0,  # after the last bar's open: due on a bar not in the data
    })  # fmt: skip
    aligned = align_funding(bars, funding)
    np.testing.assert_array_equal(aligned, [0.1, 0.2, 0.0])


def test_settlements_inside_a_bar_are_due_at_the_next_open() -> None:
    # The env charges funding_rate[t] on the position held into bar t's open, i.e. during bar
    # t - 1: a settlement inside bar t - 1 must land on bar t to be paid by its actual holder.
    days = hours("2024-01-01", "2024-01-02")
    funding = rates({"2024-01-01 00:00": 0.1, "2024-01-01 08:00": 0.2, "2024-01-01 16:00": 0.3,
                     "2024-01-02 00:00": -0.05})  # fmt: skip
    np.testing.assert_allclose(align_funding(days, funding), [0.1, 0.45])
    # BitMEX settles at 04/12/20 UTC; on 8h bars opening at 00/08/16 each is due at the next open
    bars = hours("2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 16:00")
    bitmex = rates({"2024-01-01 04:00": 0.1, "2024-01-01 12:00": 0.2, "2024-01-01 20:00": 0.3})
    np.testing.assert_allclose(align_funding(bars, bitmex), [0.0, 0.1, 0.2])


def test_settlement_inside_a_data_gap_is_charged_after_the_gap() -> None:
    bars = hours("2024-01-01 07:00", "2024-01-01 09:00")  # 08:00 missing
    aligned = align_funding(bars, rates({"2024-01-01 08:00": 0.3}))
    np.testing.assert_array_equal(aligned, [0.0, 0.3])


def test_empty_inputs() -> None:
    aligned = align_funding(hours("2024-01-01"), pd.Series([], dtype=float))
    assert aligned.tolist() == [0.0]


def test_bitmex_export_with_interval_change() -> None:
    series = load_funding(shared_file("bitmex_XBTUSD_funding_2016-05-14_2020-11-05.csv"),
                          symbol="XBTUSD")  # fmt: skip
    assert len(series) == 4866 and series.index.is_monotonic_increasing
    assert series.index[0] == pd.Timestamp("2016-05-14 12:00", tz="UTC")
    assert series.iloc[0] == pytest.approx(6.9e-4)
    # daily settlements for the first 21 rows, then 8h at 04/12/20
    assert set(series.index[:21].hour) == {12}
    assert set(series.index[21:].hour) == {4, 12, 20}


def test_binance_funding_parquet_rate_in_open() -> None:
    series = load_funding(shared_file("binance_usdm_BTCUSDT_funding_8h.parquet"))
    assert len(series) == 5819 and series.index[0] == pd.Timestamp("2019-09-10 08:00", tz="UTC")
    assert series.iloc[0] == pytest.approx(1e-4)


def test_binance_rest_and_public_data_layouts(tmp_path: Path) -> None:
    rest = tmp_path / "rest.csv"
    pd.DataFrame(
        {
            "symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT"],
            "fundingTime": [1704067200001, 1704067200000, 1704096000000],
            "fundingRate": ["0.00010000", "0.5", "-0.00002500"],
        }
    ).to_csv(rest, index=False)
    series = load_funding(rest, symbol="BTCUSDT")
    assert series.tolist() == [1e-4, -2.5e-5]
    assert series.index[0] == pd.Timestamp("2024-01-01 00:00:00.001", tz="UTC")
    vision = tmp_path / "BTCUSDT-fundingRate-2024-01.csv"
    pd.DataFrame(
        {
            "calc_time": [1704067200000, 1704096000000],
            "funding_interval_hours": [8, 8],
            "last_funding_rate": [0.0001, 0.0003],
        }
    ).to_csv(vision, index=False)
    assert load_funding(vision).tolist() == [0.0001, 0.0003]


def test_unknown_layout_and_explicit_columns(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    pd.DataFrame({"when": ["2024-01-01T00:00:00Z"], "r": [0.1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"match no known funding layout.*funding_rate_column"):
        load_funding(path)
    series = load_funding(path, timestamp_column="when", rate_column="r")
    assert series.tolist() == [0.1]
    with pytest.raises(ValueError, match=r"absent.csv does not exist; set data.source.funding_p"):
        load_funding(tmp_path / "absent.csv")
