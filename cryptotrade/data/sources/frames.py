"""Helpers every source shares: timestamp parsing and the bars-frame shape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import BAR_COLUMNS
from cryptotrade.errors import ConfigError

# Epoch magnitudes for the present era: s ~1.7e9, ms ~1.7e12, us ~1.7e15, ns ~1.7e18.
_UNIT_THRESHOLDS = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (0.0, "s"))
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# time-column names a bars, funding or mark file is searched for, in order
TIME_COLUMNS = ("date", "timestamp", "open_time", "time", "datetime")


def guess_epoch_unit(values: np.ndarray) -> str:
    """``s``/``ms``/``us``/``ns`` from the magnitude of epoch numbers (Binance switched its
    public-data spot files from ms to us in 2025, so the unit cannot be assumed)."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    peak = float(np.median(finite)) if finite.size else 0.0
    return next(unit for bound, unit in _UNIT_THRESHOLDS if peak >= bound)


def to_utc(values: pd.Series | np.ndarray | Iterable, unit: str = "auto") -> pd.DatetimeIndex:
    """Parse datetimes, ISO strings or epoch numbers into a tz-aware UTC ``DatetimeIndex``.

    Naive datetimes are taken as UTC (every exchange export here is UTC).

    Args:
        values: The timestamp column.
        unit: Epoch unit for numbers: ``s``, ``ms``, ``us``, ``ns`` or ``auto`` (by magnitude).
    """
    series = pd.Series(values)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        arr = series.to_numpy(dtype=np.float64)
        unit = guess_epoch_unit(arr) if unit == "auto" else unit
        epoch: Any = unit  # one of s/ms/us/ns by now; pandas-stubs want the Literal
        idx: Any = pd.to_datetime(series.to_numpy(dtype=np.int64), unit=epoch, utc=True)
        if pd.api.types.is_float_dtype(series):
            # float epochs may carry a sub-unit part (seconds like 1585180700.0647): keep it, to
            # the microsecond a present-era float epoch resolves, instead of truncating it away
            frac = np.nan_to_num(arr - np.trunc(arr), nan=0.0, posinf=0.0, neginf=0.0)
            sub_us = np.round(frac * _NS_PER_UNIT[unit] / 1000).astype(np.int64)
            idx = idx + pd.to_timedelta(sub_us, unit="us")
    elif pd.api.types.is_datetime64_any_dtype(series):
        idx = pd.to_datetime(series, utc=True)
    else:  # ISO strings; BitMEX dumps write 2019-01-01D00:00:00.000000000
        text = series.astype(str).str.replace(r"^(\d{4}-\d{2}-\d{2})D", r"\1T", regex=True)
        idx = pd.to_datetime(text, utc=True, format="ISO8601")
    return pd.DatetimeIndex(idx).as_unit("ns")


def dt_index(frame: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    """A frame's time index as a nanosecond ``DatetimeIndex`` (``.asi8`` is then ns)."""
    return pd.DatetimeIndex(frame.index).as_unit("ns")


def bars_frame(index: pd.DatetimeIndex, data: dict[str, np.ndarray]) -> pd.DataFrame:
    """A bars frame: OHLCV first, then any extra columns, float64, UTC index named ``date``."""
    order = [c for c in BAR_COLUMNS if c in data] + [c for c in data if c not in BAR_COLUMNS]
    frame = pd.DataFrame({c: np.asarray(data[c], dtype=np.float64) for c in order}, index=index)
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ns").rename("date")
    return frame


def clip_dates(frame: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    """Keep bars whose open time is in ``[start, end)`` (ISO dates, UTC; ``None`` = open)."""
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= frame.index >= parse_date(start)
    if end is not None:
        mask &= frame.index < parse_date(end)
    return frame[mask]


def parse_date(value: str | pd.Timestamp) -> pd.Timestamp:
    """An ISO date/datetime as a UTC timestamp (naive values are taken as UTC)."""
    try:
        ts = pd.Timestamp(value)
    except ValueError as exc:
        raise ConfigError(
            f"{value!r} is not an ISO date; use e.g. '2024-01-01' or '2024-01-01T12:00'"
        ) from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso_utc(ns: int) -> str:
    """ISO 8601 text of an epoch time in ns (UTC), for messages and data summaries."""
    return pd.Timestamp(int(ns), tz="UTC").isoformat()
