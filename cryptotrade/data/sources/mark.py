"""Mark prices: loading an exchange's mark-price series and aligning it to bar closes.

Exchanges value funding and liquidate positions on the *mark* price (an index-anchored fair
price), not on the last trade; fills happen at traded prices. The bars-frame column
``mark_price`` holds, on each bar, the mark at that bar's **close** (its open time plus one bar),
as :class:`~cryptotrade.data.market_data.MarketData` and the env expect.

A mark series comes either from a column of the bars file (``data.source.mark_column``: the
value of each row is the mark at that bar's close) or from a file of its own
(``data.source.mark_path``: BitMEX and Binance export mark prices as separate OHLC files).
A row of a mark file is *observed* at its time under ``timestamp_convention=end`` (end-labelled
bars, or point samples such as a mark-price ticker) and one row spacing later under ``open``
(its ``close`` is the mark at the end of the row's bar). Each bar takes the last mark observed
at or before its close, so no mark from after a bar's close can reach it. A bar with no mark
observed in the last row spacing before its close (before, after or inside a gap of the mark
file) is *uncovered*: rejected, or under ``mark_coverage=warn`` given the last earlier mark
(forward fill), or the traded close when the file has no earlier mark; both are counted in the
data summary.

**Mark candles.** When the marks are candles (ccxt's ``fetch_mark_ohlcv``, or a mark file with
``high`` and ``low`` columns beside its ``close``), each bar also gets the mark's own range:
``mark_high``/``mark_low``, the highest high and lowest low of the mark candles observed in the
bar, i.e. ending after its open and at or before its close. The env then liquidates a long on
the bar whose mark low reaches the liquidation price, a short on the bar whose mark high does;
with mark closes only it takes the mark to move linearly between closes
(:func:`cryptotrade.env.compiled.price_rows`). A bar holding no mark candle takes its
``mark_price`` as high and low (no intrabar range; counted as ``bars_without_range``). Mark
candles longer than the bars are not used for the range (which bar held the extreme is unknown,
and the last one would liquidate late): the summary says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import BAR_COLUMNS
from cryptotrade.data.sources.frames import TIME_COLUMNS, iso_utc
from cryptotrade.data.sources.tables import numeric_column, parse_times, read_table
from cryptotrade.errors import ConfigError, DataError
from cryptotrade.timeframes import format_ns, infer_step_ns

Convention = Literal["open", "end"]
Coverage = Literal["reject", "warn"]

# value columns of the layouts we know, tried in order: an OHLC mark file (Binance
# markPriceKlines, BitMEX bucketed mark/index), an instrument/ticker export, our own column name
KNOWN_MARK_COLUMNS = ("close", "markPrice", "mark_price")


@dataclass(frozen=True)
class MarkSeries:
    """Mark prices by the time they were observed (UTC ns, sorted, unique).

    Attributes:
        observed: Observation times, int64 ns since epoch.
        values: The marks, float64, all finite and > 0.
        spacing: The file's row spacing in ns (the freshness window of a mark).
        path: The file, for messages.
        column: The value column read.
        highs: Each row's highest mark (a mark candle's high), or ``None`` for marks without
            a range (point samples, closes only).
        lows: Each row's lowest mark, given with ``highs``.
    """

    observed: np.ndarray
    values: np.ndarray
    spacing: int
    path: str
    column: str
    highs: np.ndarray | None = None
    lows: np.ndarray | None = None


def check_marks(values: np.ndarray, path: str | Path, column: str, rows: np.ndarray) -> None:
    """Reject NaN/inf or non-positive marks, naming the first offending row of the file.

    Args:
        values: The marks to check.
        path: The file, for the message.
        column: The file's column, for the message.
        rows: Each value's row number in the file (0 = first data row).

    Raises:
        DataError: for a mark that is not a finite positive price.
    """
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        row = int(rows[bad[0]])
        raise DataError(
            f"{path}: mark column {column!r} row {row} (CSV line {row + 2}) holds "
            f"{float(values[bad[0]])!r}, not a positive price ({bad.size} such row(s)); fix or "
            "delete those rows, or point data.source.mark_column at the mark-price column"
        )


def load_marks(
    path: str | Path,
    column: str | None = None,
    time_column: str | None = None,
    symbol: str | None = None,
    convention: Literal["open", "end"] = "open",
    timezone: str | None = None,
) -> MarkSeries:
    """Read a mark-price file as marks indexed by the time they were observed.

    Args:
        path: CSV/CSV.gz/parquet file with a time column and a mark column.
        column: The mark column; ``None`` tries close, markPrice, mark_price.
        time_column: The time column; ``None`` tries date, timestamp, open_time, time, datetime.
        symbol: Keep only rows of this symbol if the file has a ``symbol`` column.
        convention: ``open``: a row's time is the open of a bar whose value is the mark at its
            end; ``end``: the value is observed at the row's time.
        timezone: IANA zone (``UTC``, ``Europe/Berlin``) of times written without one;
            ``None`` refuses such times. Epoch numbers are read by magnitude (s, ms, us or ns).

    Raises:
        DataError: naming the file and the setting to fix (a column missing, no rows for the
            symbol, too few rows to tell the spacing, repeated times, a bad mark).
    """
    table = read_table(path, setting="data.source.mark_path")
    value_col = _pick(table, column, KNOWN_MARK_COLUMNS, path, "mark_column")
    time_col = _pick(table, time_column, TIME_COLUMNS, path, "mark_time_column")
    if symbol is not None and "symbol" in table.columns:
        table = table[table["symbol"] == symbol].reset_index(drop=True)
        if table.empty:
            raise DataError(
                f"{path} has no mark rows for symbol {symbol!r}; set data.source.mark_symbol"
            )
    stamps, _ = parse_times(table[time_col], path, time_col, "auto", timezone)
    values = numeric_column(table, value_col, path)
    check_marks(values, path, value_col, np.arange(len(values)))
    ns = stamps.asi8
    order = np.argsort(ns, kind="stable")
    ns, values, rows = ns[order], values[order], order
    highs = lows = None
    if value_col == "close" and {"high", "low"} <= set(table.columns):  # mark candles
        highs, lows = (numeric_column(table, c, path)[order] for c in ("high", "low"))
        check_marks(highs, path, "high", rows)
        check_marks(lows, path, "low", rows)
        check_range(highs, lows, values, path, rows)
    repeated = np.flatnonzero(np.diff(ns) == 0)
    if repeated.size:
        row = int(rows[repeated[0] + 1])
        raise DataError(
            f"{path}: time column {time_col!r} row {row} (CSV line {row + 2}) repeats the time "
            f"{stamps[row].isoformat()} ({repeated.size} such row(s)); keep one mark per time "
            "(filter the file by data.source.mark_symbol if it holds several instruments)"
        )
    if len(ns) < 2:
        raise DataError(
            f"{path} has {len(ns)} mark row(s), too few to tell its spacing; give a mark file "
            "that spans the bars"
        )
    spacing = infer_step_ns(ns)
    observed = ns + (spacing if convention == "open" else 0)
    return MarkSeries(observed, values, spacing, str(path), value_col, highs, lows)


def check_range(
    highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, path: str | Path, rows: np.ndarray
) -> None:
    """Reject mark candles whose close lies outside [low, high], naming the first such row.

    Raises:
        DataError: for a candle with ``low > close`` or ``high < close``.
    """
    bad = np.flatnonzero((lows > closes) | (highs < closes))
    if bad.size:
        k = bad[0]
        row = int(rows[k])
        raise DataError(
            f"{path}: mark candle row {row} (CSV line {row + 2}) has close {float(closes[k])!r} "
            f"outside [low {float(lows[k])!r}, high {float(highs[k])!r}] ({bad.size} such "
            "row(s)); fix the file, or give only its close (data.source.mark_column) in a file "
            "without high/low columns"
        )


def align_marks(
    bar_close: np.ndarray,
    marks: MarkSeries,
    fallback: np.ndarray,
    *,
    bars_name: str,
    coverage: Literal["reject", "warn"] = "reject",
) -> tuple[np.ndarray, dict[str, Any], str | None]:
    """The mark at each bar's close: the last mark observed at or before it.

    Args:
        bar_close: Bar close times (open + bar length), int64 ns, in any order.
        marks: From :func:`load_marks`.
        fallback: The traded closes, used under ``coverage=warn`` where the file has no mark
            at or before a bar's close.
        bars_name: The bars' file (or source), for messages.
        coverage: ``reject`` uncovered bars (see the module docstring), or ``warn``: forward
            fill them and count them in the summary.

    Returns:
        ``(mark_price column aligned with bar_close, summary, warning)``; the summary names the
        file and column, its first and last observation and spacing, and counts the uncovered
        bars (``bars_uncovered``), how many of them were forward filled and how many took the
        traded close; the warning (``None`` if every bar is covered) says which bars and how
        they were filled, for the caller to log and report.

    Raises:
        DataError: for uncovered bars under ``coverage=reject``.
    """
    close = np.asarray(bar_close, dtype=np.int64)
    last = np.searchsorted(marks.observed, close, side="right") - 1
    has = last >= 0
    seen = np.where(has, marks.observed[np.maximum(last, 0)], np.iinfo(np.int64).min)
    uncovered = seen <= close - marks.spacing
    summary: dict[str, Any] = {
        "path": marks.path,
        "column": marks.column,
        "first": iso_utc(marks.observed[0]),
        "last": iso_utc(marks.observed[-1]),
        "interval": format_ns(marks.spacing),
        "bars_uncovered": int(uncovered.sum()),
        "bars_forward_filled": int((uncovered & has).sum()),
        "bars_traded_close": int((~has).sum()),
    }
    warning = None
    if uncovered.any():
        span = f"{iso_utc(close[uncovered].min())} .. {iso_utc(close[uncovered].max())}"
        what = (
            f"{bars_name}: {int(uncovered.sum())} bar(s) (closing {span}) have no mark in "
            f"{marks.path} in the {format_ns(marks.spacing)} before their close (it covers "
            f"{summary['first']} .. {summary['last']})"
        )
        if coverage == "reject":
            raise DataError(
                f"{what}; limit the bars with data.source.start/end, or set "
                "data.source.mark_coverage=warn to carry the last mark forward"
            )
        warning = (
            f"{what}; {summary['bars_forward_filled']} take the last earlier mark, "
            f"{summary['bars_traded_close']} the traded close (mark_coverage=warn)"
        )
    column = np.where(has, marks.values[np.maximum(last, 0)], np.asarray(fallback, np.float64))
    return column.astype(np.float64), summary, warning


def candle_marks(
    opens: np.ndarray,
    closes: np.ndarray,
    step: int,
    name: str,
    highs: np.ndarray | None = None,
    lows: np.ndarray | None = None,
) -> MarkSeries:
    """Mark-price candles (an exchange's ``fetch_mark_ohlcv``) as marks: a candle's close is
    the mark at its end, observed one bar after its open time; its high and low are the mark's
    range during the candle.

    Args:
        opens: Candle open times, sorted, int64 ns.
        closes: Their closes.
        step: The candle length in ns.
        name: The source, for messages.
        highs: Their highs, or ``None`` (closes only).
        lows: Their lows, given with ``highs``.

    Raises:
        DataError: for a candle whose close, high or low is not a positive price, or whose close
            lies outside its [low, high].
    """
    for what, values in (("close", closes), ("high", highs), ("low", lows)):
        if values is None:
            continue
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            raise DataError(
                f"{name}: {bad.size} mark-price candle(s) without a positive {what} (first "
                f"opening {iso_utc(opens[bad[0]])}); download again later, or set "
                "data.source.mark_price=false"
            )
    if highs is not None and lows is not None:
        check_range(highs, lows, closes, name, np.arange(len(closes)))
    return MarkSeries(np.asarray(opens, np.int64) + step, closes, step, name, "close", highs, lows)


def range_in_bars(
    bar_close: np.ndarray, marks: MarkSeries, step: int, closes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The mark's own high and low during each bar, from the mark candles observed in it.

    A bar ``(close - step, close]`` takes the highest high and lowest low of the candles
    observed after its open and at or before its close (so no candle ending after the bar's
    close reaches it); a bar holding none takes ``closes`` (its mark) for both.

    Args:
        bar_close: Bar close times, int64 ns, in any order.
        marks: Mark candles (``marks.highs``/``lows`` set), no longer than the bars.
        step: The bar length in ns.
        closes: Each bar's mark at its close (the aligned ``mark_price``).

    Returns:
        ``(mark_high, mark_low, bars without a candle)``.
    """
    assert marks.highs is not None and marks.lows is not None
    close = np.asarray(bar_close, dtype=np.int64)
    first = np.searchsorted(marks.observed, close - step, side="right")
    stop = np.searchsorted(marks.observed, close, side="right")
    held = stop > first
    # reduceat over [first, stop) pairs: an empty or reversed pair yields one element, masked
    bounds = np.empty(2 * len(close), dtype=np.int64)
    bounds[0::2], bounds[1::2] = first, stop
    bounds = np.minimum(bounds, len(marks.observed))  # a NaN sentinel sits at that index
    highs, lows = np.append(marks.highs, np.nan), np.append(marks.lows, np.nan)
    high = np.where(held, np.maximum.reduceat(highs, bounds)[0::2], closes)
    low = np.where(held, np.minimum.reduceat(lows, bounds)[0::2], closes)
    # the close comes from the same candles; widen against any rounding of the two sources
    return np.maximum(high, closes), np.minimum(low, closes), int((~held).sum())


def put_marks(
    frame: pd.DataFrame, marks: MarkSeries, step: int, bars_name: str, coverage: Coverage
) -> str | None:
    """:func:`align_marks` into ``frame["mark_price"]``, with mark candles no longer than the
    bars also :func:`range_in_bars` into ``frame["mark_high"]``/``["mark_low"]``, the summary
    (``range`` says which intrabar mark range the env will use) into ``frame.attrs["mark"]``;
    returns the coverage warning (``None`` if every bar is covered).

    Args:
        frame: Bars frame (open-time index, any order) with its traded ``close``.
        marks: The mark series.
        step: The bar length in ns (a bar closes at its open + ``step``).
        bars_name: The bars' file or source, for messages.
        coverage: ``reject`` or ``warn``, see :func:`align_marks`.
    """
    close = pd.DatetimeIndex(frame.index).as_unit("ns").asi8 + step
    frame["mark_price"], frame.attrs["mark"], warning = align_marks(
        close, marks, frame["close"].to_numpy(), bars_name=bars_name, coverage=coverage
    )
    summary = frame.attrs["mark"]
    if marks.highs is None:
        summary["range"] = "none: mark closes only (liquidation on the range between closes)"
    elif marks.spacing > step:
        summary["range"] = (
            f"not used: mark candles of {format_ns(marks.spacing)} are longer than the "
            f"{format_ns(step)} bars (liquidation on the range between closes)"
        )
    else:
        high, low, without = range_in_bars(close, marks, step, frame["mark_price"].to_numpy())
        frame["mark_high"], frame["mark_low"] = high, low
        summary["range"] = "mark candles' own high/low"
        summary["bars_without_range"] = without
    return warning


@dataclass(frozen=True)
class MarkFile:
    """A file source's mark-file settings (``data.source.mark_*``), see :func:`mark_file`."""

    path: str
    column: str | None
    symbol: str | None
    time_column: str | None
    convention: Convention
    coverage: Coverage

    def apply(
        self, frame: pd.DataFrame, step: int, bars_name: str, timezone: str | None = None
    ) -> list[str]:
        """Put the mark at each bar's close into ``frame["mark_price"]`` and the summary into
        ``frame.attrs["mark"]``; return the warnings to report.

        Args:
            frame: Bars frame (open-time index, any order) with its traded ``close``.
            step: The bar length in ns (a bar closes at its open + ``step``).
            bars_name: The bars' file, for messages.
            timezone: Zone of mark times written without one (the bars file's setting).
        """
        marks = load_marks(
            self.path, self.column, self.time_column, self.symbol, self.convention, timezone
        )
        warning = put_marks(frame, marks, step, bars_name, self.coverage)
        return [] if warning is None else [warning]


def mark_file(
    path: str | None,
    column: str | None,
    symbol: str | None,
    time_column: str | None,
    convention: str | None,
    coverage: str,
    *,
    bars_symbol: str | None,
    bars_convention: Literal["open", "end"],
) -> MarkFile | None:
    """Check a file source's mark settings; the mark file to read, or ``None`` if none.

    Settings that would silently do nothing are refused: a mark-file setting without
    ``mark_path``, or a ``mark_column`` naming a traded-price column of the bars file.

    Raises:
        ConfigError: naming the setting and the fix.
    """
    if coverage not in ("reject", "warn"):
        raise ConfigError(f"data.source.mark_coverage={coverage!r}; use reject or warn")
    if convention not in (None, "open", "end"):
        raise ConfigError(
            f"data.source.mark_timestamp_convention={convention!r}; use open, end or null (as "
            "the bars file)"
        )
    if path is not None:
        return MarkFile(
            path,
            column,
            symbol if symbol is not None else bars_symbol,
            time_column,
            cast(Convention, convention or bars_convention),
            cast(Coverage, coverage),
        )
    stray = next(
        (
            k
            for k, v in (
                ("mark_symbol", symbol),
                ("mark_time_column", time_column),
                ("mark_timestamp_convention", convention),
            )
            if v is not None
        ),
        None,
    )
    if stray is not None:
        raise ConfigError(
            f"data.source.{stray} is set but data.source.mark_path is null; it applies to a "
            "mark file only: set mark_path, or set it to null"
        )
    if column in BAR_COLUMNS:
        raise ConfigError(
            f"data.source.mark_column={column!r} without a mark_path names the bars file's "
            "traded prices; set data.source.mark_path to the mark file, or mark_column to the "
            "bars file's mark column"
        )
    return None


def last_in_bar(ts: np.ndarray, values: np.ndarray, opens: np.ndarray, step: int) -> np.ndarray:
    """Resampling: the mark at a long bar's close is the mark of its last input bar.

    Args:
        ts: Sorted input bar open times, int64 ns.
        values: The input bars' marks (each at its bar's close).
        opens: Open times of the long bars, int64 ns; each holds at least one input bar.
        step: The long bar length in ns.
    """
    last = np.searchsorted(ts, np.asarray(opens, np.int64) + step, side="left") - 1
    if np.any(last < 0) or np.any(ts[last] < opens):
        raise ValueError("a resampled bar holds no input bar")
    return np.asarray(values, dtype=np.float64)[last]


def _pick(
    table: pd.DataFrame, given: str | None, known: tuple[str, ...], path: str | Path, setting: str
) -> str:
    """The column named by ``data.source.<setting>``, or the first of ``known`` present."""
    if given is not None:
        if given not in table.columns:
            raise DataError(
                f"{path} has no column data.source.{setting}={given!r} (columns "
                f"{list(table.columns)}); fix the setting"
            )
        return given
    found = next((c for c in known if c in table.columns), None)
    if found is None:
        raise DataError(
            f"{path}: none of the columns {list(known)} (columns {list(table.columns)}); set "
            f"data.source.{setting}"
        )
    return found
