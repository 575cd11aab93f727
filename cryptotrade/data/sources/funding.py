"""Perpetual funding history: loading exchange exports and aligning settlements to bars.

The bars-frame column ``funding_rate`` holds, on each bar, the funding settled at that bar's open
time or during the bar before it, and 0.0 elsewhere. The env charges ``funding_rate[t]`` at the
open of bar ``t`` on the position held into that open, i.e. the position held during bar
``t - 1``: so a settlement inside a bar (BitMEX's 04/12/20 UTC on 8h bars opening at 00/08/16,
or any settlement on daily bars) is paid by the position that was actually held when it
settled, at the next bar's open. A bar longer than the funding interval collects the sum of the
settlements it spans, and a settlement inside a data gap is charged at the first bar after the
gap (the position was held across it). Every source (ccxt, files, ticks) aligns funding with
:func:`align_funding`, so the convention is the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryptotrade.data.sources.frames import to_utc

# (timestamp column, rate column) of the layouts we know, tried in order.
KNOWN_LAYOUTS = (
    ("timestamp", "fundingRate"),  # BitMEX API export / ccxt fetch_funding_rate_history rows
    ("fundingTime", "fundingRate"),  # Binance REST /fapi/v1/fundingRate
    ("calc_time", "last_funding_rate"),  # Binance public-data fundingRate CSV
    ("date", "funding_rate"),  # our own cache layout
    ("date", "open"),  # freqtrade-style funding parquet: rate in `open`, h/l/c/v are 0
)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet file by its suffix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the path in the data config")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def load_funding(
    path: str | Path,
    timestamp_column: str | None = None,
    rate_column: str | None = None,
    symbol: str | None = None,
) -> pd.Series:
    """Load a funding history file as a rate series indexed by settlement time (UTC).

    Args:
        path: CSV/CSV.gz/parquet file: a BitMEX funding export, a Binance funding file (REST
            rows, public-data CSV or freqtrade parquet) or any file given the two columns.
        timestamp_column: Settlement-time column; ``None`` detects a known layout.
        rate_column: Rate column; ``None`` detects a known layout.
        symbol: Keep only rows of this symbol if the file has a ``symbol`` column.

    Returns:
        Float64 rates, sorted by settlement time, one per settlement.
    """
    table = read_table(path)
    ts_col, rate_col = timestamp_column, rate_column
    if ts_col is None or rate_col is None:
        layout = next(
            ((t, r) for t, r in KNOWN_LAYOUTS if t in table.columns and r in table.columns), None
        )
        if layout is None:
            raise ValueError(
                f"{path}: columns {list(table.columns)} match no known funding layout "
                f"{KNOWN_LAYOUTS}; set the funding timestamp and rate columns"
            )
        ts_col, rate_col = ts_col or layout[0], rate_col or layout[1]
    if symbol is not None and "symbol" in table.columns:
        table = table[table["symbol"] == symbol]
        if table.empty:
            raise ValueError(f"{path} has no funding rows for symbol {symbol!r}")
    rates = pd.Series(
        pd.to_numeric(table[rate_col], errors="raise").to_numpy(dtype=np.float64),
        index=to_utc(table[ts_col]),
        name="funding_rate",
    )
    rates = rates[~rates.index.duplicated(keep="last")].sort_index()
    return rates


# Exchange settlement stamps can run a few milliseconds late (Binance: 08:00:00.007).
STAMP_TOLERANCE_NS = 10**9


def align_funding(bar_open: pd.DatetimeIndex, rates: pd.Series) -> np.ndarray:
    """Put each settlement on the first bar opening at or after it (see the module docstring).

    Args:
        bar_open: Sorted bar open times (UTC).
        rates: Settlement rates indexed by settlement time (see :func:`load_funding`).

    Returns:
        A float64 array aligned with ``bar_open``. Settlements more than a second before the
        first bar's open, or after the last bar's open (due on a bar the data does not have),
        are out of range and dropped.
    """
    opens = np.asarray(bar_open.asi8, dtype=np.int64)
    out = np.zeros(len(opens), dtype=np.float64)
    if len(opens) == 0 or len(rates) == 0:
        return out
    times = pd.DatetimeIndex(rates.index).tz_convert("UTC").as_unit("ns").asi8
    due = np.searchsorted(opens, times - STAMP_TOLERANCE_NS, side="left")
    in_range = (due < len(opens)) & (times >= opens[0] - STAMP_TOLERANCE_NS)
    np.add.at(out, due[in_range], rates.to_numpy(dtype=np.float64)[in_range])
    return out
