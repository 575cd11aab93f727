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

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from cryptotrade.data.sources.frames import iso_utc
from cryptotrade.data.sources.tables import numeric_column, parse_times, read_table
from cryptotrade.errors import ConfigError, DataError
from cryptotrade.timeframes import format_ns, infer_step_ns, timeframe_to_ns

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FundingFile:
    """The ``funding_*`` settings the file and tick sources share, checked and used in one place.

    Both sources take them as six flat arguments (``data.source.funding_path=...`` on the command
    line) and hand them to :meth:`from_settings`; this is where they are documented.

    Attributes:
        path: ``funding_path``: the funding history (BitMEX CSV export, Binance or Deribit
            funding file) aligned into the ``funding_rate`` column.
        symbol: ``funding_symbol``: symbol filter for the funding file (default: the bars'
            ``symbol``).
        time_column: ``funding_time_column``: the file's settlement-time column; ``None``
            detects a known layout (BitMEX, Binance, ccxt rows).
        rate_column: ``funding_rate_column``: its rate column (``interest_1h`` for Deribit);
            ``None`` detects.
        rate_interval: ``funding_rate_interval``: the period the rate is quoted for when it
            differs from the file's row spacing (``8h`` for Deribit's ``interest_8h`` on hourly
            rows).
        coverage: ``funding_coverage``: bars outside the file's range: ``reject``, or ``warn``
            (no funding charged on them; logged and counted in the data summary).
    """

    path: str
    symbol: str | None = None
    time_column: str | None = None
    rate_column: str | None = None
    rate_interval: str | None = None
    coverage: Literal["reject", "warn"] = "reject"

    @classmethod
    def from_settings(
        cls,
        path: str | None,
        symbol: str | None,
        time_column: str | None,
        rate_column: str | None,
        rate_interval: str | None,
        coverage: str,
        *,
        bars_symbol: str | None,
    ) -> FundingFile | None:
        """Check a source's six ``funding_*`` arguments; ``None`` without ``funding_path``.

        Raises:
            ConfigError: A bad ``funding_coverage`` or ``funding_rate_interval`` (even without a
                file: a typo fails at construction, not when a file is added later).
        """
        if coverage not in ("reject", "warn"):
            raise ConfigError(f"data.source.funding_coverage={coverage!r}; use reject or warn")
        if rate_interval is not None:
            try:
                timeframe_to_ns(rate_interval)
            except ValueError as exc:
                raise ConfigError(f"data.source.funding_rate_interval: {exc}") from exc
        if path is None:
            return None
        return cls(
            path=str(path),
            symbol=symbol if symbol is not None else bars_symbol,
            time_column=time_column,
            rate_column=rate_column,
            rate_interval=rate_interval,
            coverage=coverage,  # type: ignore[arg-type]  # checked above
        )

    def rates(self, timezone: str | None = None) -> pd.Series:
        """The file's settlements (:func:`load_funding`); ``timezone``: the zone of times
        written without one (``None`` refuses them)."""
        return load_funding(
            self.path,
            self.time_column,
            self.rate_column,
            symbol=self.symbol,
            rate_interval=self.rate_interval,
            timezone=timezone,
        )

    def column(
        self, bar_open: pd.DatetimeIndex, rates: pd.Series, *, bars_name: str
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """``rates`` aligned to the bars and checked for coverage (:func:`funding_column`)."""
        return funding_column(
            bar_open, rates, path=self.path, bars_name=bars_name, coverage=self.coverage
        )


# (timestamp column, rate column) of the layouts we know, tried in order.
KNOWN_LAYOUTS = (
    ("timestamp", "fundingRate"),  # BitMEX API export / ccxt fetch_funding_rate_history rows
    ("fundingTime", "fundingRate"),  # Binance REST /fapi/v1/fundingRate
    ("calc_time", "last_funding_rate"),  # Binance public-data fundingRate CSV
    ("date", "funding_rate"),  # our own cache layout
    ("date", "open"),  # freqtrade-style funding parquet: rate in `open`, h/l/c/v are 0
)


def load_funding(
    path: str | Path,
    timestamp_column: str | None = None,
    rate_column: str | None = None,
    symbol: str | None = None,
    rate_interval: str | None = None,
    timezone: str | None = None,
) -> pd.Series:
    """Load a funding history file as a rate series indexed by settlement time (UTC).

    Args:
        path: CSV/CSV.gz/parquet file: a BitMEX funding export, a Binance funding file (REST
            rows, public-data CSV or freqtrade parquet), or any layout given its two columns
            (Deribit's funding-rate history: ``timestamp`` in ms and ``interest_1h``).
        timestamp_column: Settlement-time column; ``None`` detects a known layout.
        rate_column: Rate column; ``None`` detects a known layout.
        symbol: Keep only rows of this symbol if the file has a ``symbol`` column.
        rate_interval: The period the rate is quoted for (``8h`` for Deribit's ``interest_8h``)
            when it differs from the spacing of the rows: each row's rate is then scaled by
            ``row spacing / rate_interval`` to the amount settled at that row. ``None`` = each
            row's rate is what settles at its time.
        timezone: Zone of times written without one (``UTC``, ``Europe/Berlin``); ``None``
            refuses such times (:func:`~cryptotrade.data.sources.tables.parse_times`).

    Returns:
        Float64 rates, sorted by settlement time, one per settlement.

    Raises:
        DataError: naming the file and the setting to fix (no known layout, a named column
            missing, text in the rate column, no rows for the symbol).
    """
    table = read_table(path, setting="data.source.funding_path")
    ts_col, rate_col = timestamp_column, rate_column
    if ts_col is None or rate_col is None:
        layout = next(
            (
                (t, r)
                for t, r in KNOWN_LAYOUTS
                if t in table.columns
                and r in table.columns
                and ts_col in (None, t)
                and rate_col in (None, r)
            ),
            None,
        )
        if layout is None:
            raise DataError(
                f"{path}: columns {list(table.columns)} match no known funding layout; set "
                "data.source.funding_time_column and data.source.funding_rate_column (e.g. "
                "timestamp and interest_1h for Deribit)"
            )
        ts_col, rate_col = ts_col or layout[0], rate_col or layout[1]
    for setting, col in (("funding_time_column", ts_col), ("funding_rate_column", rate_col)):
        if col not in table.columns:
            raise DataError(
                f"{path} has no column {col!r} (columns {list(table.columns)}); set "
                f"data.source.{setting}"
            )
    if symbol is not None and "symbol" in table.columns:
        table = table[table["symbol"] == symbol].reset_index(drop=True)
        if table.empty:
            raise DataError(
                f"{path} has no funding rows for symbol {symbol!r}; set data.source.funding_symbol"
            )
    index, _ = parse_times(table[ts_col], path, ts_col, timezone=timezone)
    rates = pd.Series(numeric_column(table, rate_col, path), index=index, name="funding_rate")
    rates = rates[~rates.index.duplicated(keep="last")].sort_index()
    if rate_interval is not None and len(rates) > 1:
        spacing = infer_step_ns(pd.DatetimeIndex(rates.index).as_unit("ns").asi8)
        rates = rates * (spacing / timeframe_to_ns(rate_interval))
    return rates


def funding_column(
    bar_open: pd.DatetimeIndex,
    rates: pd.Series,
    *,
    path: str | Path,
    bars_name: str,
    coverage: Literal["reject", "warn"] = "reject",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Align ``rates`` to the bars and check that the funding file covers every bar.

    A bar is uncovered when it opens one settlement interval (or more) before the first
    settlement or after the last one: a settlement the file does not have would be due on it.

    Args:
        bar_open: Bar open times (UTC), in any order.
        rates: Settlements from :func:`load_funding`.
        path: The funding file, for messages.
        bars_name: The bars' file (or source), for messages.
        coverage: ``reject`` uncovered bars, or ``warn``: charge them no funding, log a warning
            and count them in the summary.

    Returns:
        ``(funding_rate column aligned with bar_open, summary)``; the summary names the file, its
        first and last settlement, the settlements in the file and on the bars, and the number
        of uncovered bars.

    Raises:
        DataError: for uncovered bars under ``coverage=reject``.
    """
    if coverage not in ("reject", "warn"):
        raise DataError(f"data.source.funding_coverage={coverage!r}; use reject or warn")
    opens = np.asarray(pd.DatetimeIndex(bar_open).as_unit("ns").asi8, dtype=np.int64)
    order = np.argsort(opens, kind="stable")
    column = np.empty(len(opens), dtype=np.float64)
    column[order] = align_funding(pd.DatetimeIndex(opens[order].view("datetime64[ns]")), rates)
    times = pd.DatetimeIndex(rates.index).as_unit("ns").asi8
    summary: dict[str, Any] = {"path": str(path), "settlements": len(rates)}
    if len(times) == 0:
        uncovered = np.ones(len(opens), dtype=bool)
    else:
        interval = infer_step_ns(times) if len(times) > 1 else 0
        summary.update(
            first=iso_utc(times[0]), last=iso_utc(times[-1]), interval=format_ns(interval)
        )
        # the settlement before the first (after the last) would be due on a bar opening at
        # or before times[0] - interval (at or after times[-1] + interval): those bars' funding
        # is unknown
        uncovered = (opens <= times[0] - interval) | (opens >= times[-1] + interval)
    if len(opens):
        on_bars = (times >= opens.min() - STAMP_TOLERANCE_NS) & (
            times <= opens.max() + STAMP_TOLERANCE_NS
        )
        summary["settlements_on_bars"] = int(on_bars.sum())
    summary["bars_uncovered"] = int(uncovered.sum())
    if uncovered.any():
        span = f"{iso_utc(opens[uncovered].min())} .. {iso_utc(opens[uncovered].max())}"
        covers = f"{summary['first']} .. {summary['last']}" if len(times) else "nothing"
        what = (
            f"{bars_name}: {int(uncovered.sum())} bar(s) ({span}) lie outside the funding file "
            f"{path} (covers {covers})"
        )
        if coverage == "reject":
            raise DataError(
                f"{what}; limit the bars with data.source.start/end, or set "
                "data.source.funding_coverage=warn to charge them no funding"
            )
        _log.warning("%s; they are charged no funding (funding_coverage=warn)", what)
    return column, summary


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
