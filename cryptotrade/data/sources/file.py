"""OHLCV bars from a CSV or parquet file, with column mapping and a timestamp convention.

Whatever is wrong with the file is a one-line :class:`~cryptotrade.errors.DataError` naming the
file, the column or row and the fix (see :mod:`cryptotrade.data.sources.tables`); times written
without a zone are refused unless ``data.source.timezone`` names it. What the source tolerated
(bars outside the funding file under ``funding_coverage=warn``) is logged and listed in
``frame.attrs["warnings"]``; the funding file's range and settlements are in
``frame.attrs["funding"]``, the mark-price series' source and coverage in ``frame.attrs["mark"]``
(see :mod:`cryptotrade.data.sources.mark`). The dataset summary reports them all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import BAR_COLUMNS
from cryptotrade.data.sources.frames import (
    TIME_COLUMNS,
    bars_frame,
    clip_dates,
    dt_index,
    parse_date,
)
from cryptotrade.data.sources.funding import FundingFile
from cryptotrade.data.sources.mark import check_marks, last_in_bar, mark_file
from cryptotrade.data.sources.tables import has_header, numeric_column, parse_times, read_table
from cryptotrade.data.sources.ticks import resample_bars
from cryptotrade.errors import ConfigError, DataError
from cryptotrade.timeframes import format_ns, infer_step_ns, timeframe_to_ns

_log = logging.getLogger(__name__)

# Binance REST klines and data.binance.vision CSVs (the spot ones have no header row).
BINANCE_KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


class FileSource:
    """Bars read from a CSV (optionally ``.gz``) or parquet file.

    Args:
        path: The file. ``.parquet`` is read as parquet, anything else as CSV.
        columns: Mapping ``{file column: bars column}``, e.g. ``{"homeNotional": "volume"}`` to
            take BitMEX volume in BTC instead of contracts. Unmapped bars columns are looked up
            by their own name.
        timestamp_column: The time column; ``None`` tries date, timestamp, open_time, time.
        timestamp_unit: Unit of numeric epoch timestamps: ``auto`` (by magnitude), s, ms, us, ns.
        timestamp_convention: ``open`` if a row's time is the bar's open (Binance, freqtrade),
            ``end`` if it is the bar's end (BitMEX bucketed bars); end times are moved back by
            one bar so the frame is always indexed by open time.
        timeframe: The file's bar length (``1m``, ``1h`` ...); ``None`` infers the most common
            spacing of the file. A given length that differs from the file's spacing is an error
            (an end-labelled file would otherwise be shifted by the wrong amount).
        timezone: IANA zone (``Europe/Berlin``, ``UTC``) of time text written without a zone
            (in the bars, mark and funding files); ``None`` refuses such times, naming this
            setting. Epoch numbers and times with a zone are unaffected.
        symbol: Keep only rows of this symbol when the file has a ``symbol`` column.
        start: First bar open time to keep (ISO date, UTC, inclusive); ``None`` = from the start.
        end: Bar open time to stop before (exclusive); ``None`` = to the end.
        keep_columns: Extra numeric columns to keep (e.g. ``trades``, ``vwap``), after mapping.
        csv_header: ``True`` if the CSV has a header row, ``False`` if not (then it must have the
            12 Binance kline columns), ``None`` to detect it.
        csv_delimiter: CSV field separator (``;`` for many European exports).
        funding_path, funding_symbol, funding_time_column, funding_rate_column,
        funding_rate_interval, funding_coverage: An optional funding history file aligned into
            the ``funding_rate`` column and how to read it (shared with the other file-based
            source; documented and checked by
            :class:`~cryptotrade.data.sources.funding.FundingFile`).
        resample_to: Aggregate the bars into longer bars (e.g. ``1h`` from a 1-minute file),
            epoch-aligned; bars missing any input bar are dropped and extra columns are not
            carried over (the mark price is: the mark of a bar's last input bar). ``None`` keeps
            the file's bars.
        mark_path: Optional mark-price file (funding and liquidation then use the mark, fills
            the traded price); aligned to bar closes without look-ahead
            (:mod:`cryptotrade.data.sources.mark`).
        mark_column: The mark column: of ``mark_path`` (``None`` tries close, markPrice,
            mark_price), or, without ``mark_path``, of the bars file itself (after mapping),
            each row holding the mark at that bar's close.
        mark_symbol: Symbol filter for the mark file (default: ``symbol``).
        mark_time_column: The mark file's time column; ``None`` tries date, timestamp,
            open_time, time, datetime.
        mark_timestamp_convention: ``open`` if a mark row's time is the open of a bar whose
            ``close`` is the mark at its end (Binance markPriceKlines), ``end`` if the mark is
            observed at the row's time (end-labelled BitMEX buckets, point samples); ``None`` =
            the bars file's ``timestamp_convention``.
        mark_coverage: Bars with no mark in the mark file's row spacing before their close
            (outside or in a gap of the file): ``reject``, or ``warn`` (the last earlier mark,
            else the traded close; logged and counted in the data summary).
    """

    def __init__(
        self,
        path: str,
        columns: dict[str, str] | None = None,
        timestamp_column: str | None = None,
        timestamp_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto",
        timestamp_convention: Literal["open", "end"] = "open",
        timeframe: str | None = None,
        timezone: str | None = None,
        symbol: str | None = None,
        start: str | None = None,
        end: str | None = None,
        keep_columns: list[str] | None = None,
        csv_header: bool | None = None,
        csv_delimiter: str = ",",
        funding_path: str | None = None,
        funding_symbol: str | None = None,
        funding_time_column: str | None = None,
        funding_rate_column: str | None = None,
        funding_rate_interval: str | None = None,
        funding_coverage: Literal["reject", "warn"] = FundingFile.coverage,
        resample_to: str | None = None,
        mark_path: str | None = None,
        mark_column: str | None = None,
        mark_symbol: str | None = None,
        mark_time_column: str | None = None,
        mark_timestamp_convention: Literal["open", "end"] | None = None,
        mark_coverage: Literal["reject", "warn"] = "reject",
    ) -> None:
        if timestamp_convention not in ("open", "end"):
            raise ConfigError(
                f"data.source.timestamp_convention={timestamp_convention!r}; use 'open' (Binance, "
                "freqtrade: time = bar open) or 'end' (BitMEX buckets: time = bar end)"
            )
        if timestamp_unit not in ("auto", "s", "ms", "us", "ns"):
            raise ConfigError(
                f"data.source.timestamp_unit={timestamp_unit!r}; use auto, s, ms, us or ns"
            )
        self.path = Path(path)
        self.columns = dict(columns or {})
        self.timestamp_column = timestamp_column
        self.timestamp_unit = timestamp_unit
        self.timestamp_convention = timestamp_convention
        self.timeframe = timeframe
        self.step_ns = None if timeframe is None else _setting_ns("timeframe", timeframe)
        self.timezone = timezone
        self.symbol = symbol
        self.start, self.end = start, end
        for value in (start, end):
            if value is not None:
                parse_date(value)  # a bad date fails at construction, before the file is read
        self.keep_columns = list(keep_columns or [])
        self.csv_header = csv_header
        self.csv_delimiter = csv_delimiter
        self.funding = FundingFile.from_settings(
            funding_path,
            funding_symbol,
            funding_time_column,
            funding_rate_column,
            funding_rate_interval,
            funding_coverage,
            bars_symbol=symbol,
        )
        self.resample_to = resample_to
        if resample_to is not None:
            _setting_ns("resample_to", resample_to)  # fail at construction on a bad bar length
        self.mark_path, self.mark_column = mark_path, mark_column
        self.mark_file = mark_file(
            mark_path,
            mark_column,
            mark_symbol,
            mark_time_column,
            mark_timestamp_convention,
            mark_coverage,
            bars_symbol=symbol,
            bars_convention=timestamp_convention,
        )

    def __repr__(self) -> str:
        return f"FileSource(path={str(self.path)!r}, convention={self.timestamp_convention!r})"

    def load(self) -> pd.DataFrame:
        """Read the file and return the bars frame (indexed by bar open time, UTC)."""
        table = self._read()
        # a mapped column replaces the file's own column of that name (homeNotional -> volume)
        absent = [c for c in self.columns if c not in table.columns]
        if absent:
            raise DataError(
                f"{self.path} has no column(s) {absent} named in data.source.columns (columns "
                f"{list(table.columns)}); fix the mapping"
            )
        replaced = [
            t for t in self.columns.values() if t in table.columns and t not in self.columns
        ]
        table = table.drop(columns=replaced).rename(columns=self.columns)
        if self.symbol is not None and "symbol" in table.columns:
            table = table[table["symbol"] == self.symbol].reset_index(drop=True)
            if table.empty:
                raise DataError(
                    f"{self.path} has no rows for symbol {self.symbol!r}; set data.source.symbol"
                )
        ts_col = self._timestamp_column(table)
        # a mark column of the bars file itself (no separate mark file)
        own_mark = self.mark_column if self.mark_path is None else None
        wanted = (*BAR_COLUMNS, *self.keep_columns, *([own_mark] if own_mark else []))
        missing = [c for c in wanted if c not in table.columns]
        if missing:
            raise DataError(
                f"{self.path} lacks columns {missing} (has {list(table.columns)}); map them with "
                "data.source.columns={file_column: bars_column}"
                + (" or fix data.source.mark_column" if own_mark in missing else "")
            )
        index, naive = parse_times(
            table[ts_col], self.path, ts_col, self.timestamp_unit, self.timezone
        )
        warnings: list[str] = []
        if not naive and self.timezone is not None:
            warnings.append(
                f"{self.path}: times in {ts_col!r} carry their zone (or are epoch numbers), so "
                f"data.source.timezone={self.timezone} is ignored; set it to null"
            )
        step = self._step(index)
        if self.timestamp_convention == "end":
            index = index - pd.Timedelta(step, unit="ns")
        data = {c: numeric_column(table, c, self.path) for c in (*BAR_COLUMNS, *self.keep_columns)}
        if own_mark:
            data["mark_price"] = numeric_column(table, own_mark, self.path)
        frame = clip_dates(bars_frame(index, data), self.start, self.end)
        if own_mark:  # only the kept rows must hold a mark; messages name their file rows
            rows = pd.DataFrame({"row": np.arange(len(index))}, index=index)
            kept = clip_dates(rows, self.start, self.end)["row"].to_numpy()
            check_marks(frame["mark_price"].to_numpy(), self.path, own_mark, kept)
        if frame.empty:
            raise DataError(
                f"{self.path} has no bars in [{self.start}, {self.end}); widen "
                "data.source.start/end"
            )
        if self.resample_to is not None:
            fine = frame.sort_index(kind="mergesort")
            frame = resample_bars(fine, self.resample_to)
            step = timeframe_to_ns(self.resample_to)
            if frame.empty:
                raise DataError(
                    f"{self.path} holds no complete {self.resample_to} bar; use a shorter "
                    "data.source.resample_to or more rows"
                )
            if own_mark:
                frame["mark_price"] = last_in_bar(
                    dt_index(fine).asi8, fine["mark_price"].to_numpy(), dt_index(frame).asi8, step
                )
        if self.funding is not None:
            frame["funding_rate"], frame.attrs["funding"] = self.funding.column(
                pd.DatetimeIndex(frame.index),
                self.funding.rates(self.timezone),
                bars_name=str(self.path),
            )
            if frame.attrs["funding"]["bars_uncovered"]:
                warnings.append(
                    f"{frame.attrs['funding']['bars_uncovered']} bar(s) outside the funding file "
                    f"{self.funding.path} are charged no funding"
                )
        if own_mark:
            frame.attrs["mark"] = {"path": str(self.path), "column": own_mark}
        if self.mark_file is not None:
            warnings.extend(self.mark_file.apply(frame, step, str(self.path), self.timezone))
        for text in warnings:
            _log.warning(text)
        frame.attrs["warnings"] = warnings
        frame.attrs["timeframe"] = format_ns(step)
        return frame

    def _step(self, index: pd.DatetimeIndex) -> int:
        """The file's bar length: inferred from its spacing, and checked against ``timeframe``."""
        stamps = np.unique(index.asi8)
        if len(stamps) < 2:
            if self.step_ns is not None:
                return self.step_ns
            raise DataError(
                f"{self.path} has {len(stamps)} distinct time(s), too few to tell the bar length; "
                "add rows, or set data.source.timeframe"
            )
        spacing = infer_step_ns(stamps)
        if self.step_ns is not None and self.step_ns != spacing:
            raise DataError(
                f"{self.path}: data.source.timeframe={self.timeframe} but its rows are "
                f"{format_ns(spacing)} apart; set data.source.timeframe={format_ns(spacing)} "
                "or null (inferred)"
            )
        return spacing

    def _read(self) -> pd.DataFrame:
        if self.path.suffix == ".parquet" or not self.path.is_file():
            return read_table(self.path)
        header = self.csv_header
        if header is None:
            header = has_header(self.path, self.csv_delimiter)
        table = read_table(self.path, delimiter=self.csv_delimiter, header=header)
        if header:
            return table
        if table.shape[1] != len(BINANCE_KLINE_COLUMNS):
            raise DataError(
                f"{self.path} has no header and {table.shape[1]} columns; only the 12-column "
                "Binance kline layout is known without a header; add a header row"
            )
        table.columns = list(BINANCE_KLINE_COLUMNS)
        return table

    def _timestamp_column(self, table: pd.DataFrame) -> str:
        if self.timestamp_column is not None:
            if self.timestamp_column not in table.columns:
                raise DataError(
                    f"{self.path} has no column data.source.timestamp_column="
                    f"{self.timestamp_column!r} (columns {list(table.columns)}); fix the setting"
                )
            return self.timestamp_column
        for name in TIME_COLUMNS:
            if name in table.columns:
                return name
        raise DataError(
            f"{self.path}: no time column among {TIME_COLUMNS} (columns "
            f"{list(table.columns)}); set data.source.timestamp_column"
        )


def _setting_ns(name: str, value: str) -> int:
    try:
        return timeframe_to_ns(value)
    except ValueError as exc:
        raise ConfigError(f"data.source.{name}: {exc}") from exc
