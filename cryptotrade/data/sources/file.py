"""OHLCV bars from a CSV or parquet file, with column mapping and a timestamp convention."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cryptotrade.data.market_data import BAR_COLUMNS
from cryptotrade.data.sources.frames import bars_frame, clip_dates, dt_index, to_utc
from cryptotrade.data.sources.funding import align_funding, load_funding
from cryptotrade.data.sources.ticks import resample_bars
from cryptotrade.timeframes import infer_step_ns, timeframe_to_ns

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
_TIMESTAMP_CANDIDATES = ("date", "timestamp", "open_time", "time", "datetime")


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
        timeframe: Bar length (``1m``, ``1h`` ...); ``None`` infers the most common spacing.
        symbol: Keep only rows of this symbol when the file has a ``symbol`` column.
        start: First bar open time to keep (ISO date, UTC, inclusive); ``None`` = from the start.
        end: Bar open time to stop before (exclusive); ``None`` = to the end.
        keep_columns: Extra numeric columns to keep (e.g. ``trades``, ``vwap``), after mapping.
        csv_header: ``True`` if the CSV has a header row, ``False`` if not (then it must have the
            12 Binance kline columns), ``None`` to detect it.
        funding_path: Optional funding history (BitMEX export or Binance funding file) aligned
            into the ``funding_rate`` column.
        funding_symbol: Symbol filter for the funding file (default: ``symbol``).
        resample_to: Aggregate the bars into longer ones (e.g. ``1h`` from a 1-minute file),
            epoch-aligned; bars missing any input bar are dropped and extra columns are not
            carried over. ``None`` keeps the file's bars.
    """

    def __init__(
        self,
        path: str,
        columns: dict[str, str] | None = None,
        timestamp_column: str | None = None,
        timestamp_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto",
        timestamp_convention: Literal["open", "end"] = "open",
        timeframe: str | None = None,
        symbol: str | None = None,
        start: str | None = None,
        end: str | None = None,
        keep_columns: list[str] | None = None,
        csv_header: bool | None = None,
        funding_path: str | None = None,
        funding_symbol: str | None = None,
        resample_to: str | None = None,
    ) -> None:
        if timestamp_convention not in ("open", "end"):
            raise ValueError(
                f"timestamp_convention={timestamp_convention!r}; use 'open' (Binance, freqtrade: "
                "time = bar open) or 'end' (BitMEX buckets: time = bar end)"
            )
        if timestamp_unit not in ("auto", "s", "ms", "us", "ns"):
            raise ValueError(f"timestamp_unit={timestamp_unit!r}; use auto, s, ms, us or ns")
        self.path = Path(path)
        self.columns = dict(columns or {})
        self.timestamp_column = timestamp_column
        self.timestamp_unit = timestamp_unit
        self.timestamp_convention = timestamp_convention
        self.step_ns = None if timeframe is None else timeframe_to_ns(timeframe)
        self.symbol = symbol
        self.start, self.end = start, end
        self.keep_columns = list(keep_columns or [])
        self.csv_header = csv_header
        self.funding_path = funding_path
        self.funding_symbol = funding_symbol if funding_symbol is not None else symbol
        self.resample_to = resample_to
        if resample_to is not None:
            timeframe_to_ns(resample_to)  # fail at construction on a bad bar length

    def __repr__(self) -> str:
        return f"FileSource(path={str(self.path)!r}, convention={self.timestamp_convention!r})"

    def load(self) -> pd.DataFrame:
        """Read the file and return the bars frame (indexed by bar open time, UTC)."""
        table = self._read()
        # a mapped column replaces the file's own column of that name (homeNotional -> volume)
        replaced = [
            t for t in self.columns.values() if t in table.columns and t not in self.columns
        ]
        table = table.drop(columns=replaced).rename(columns=self.columns)
        if self.symbol is not None and "symbol" in table.columns:
            table = table[table["symbol"] == self.symbol]
            if table.empty:
                raise ValueError(f"{self.path} has no rows for symbol {self.symbol!r}")
        ts_col = self._timestamp_column(table)
        index = to_utc(table[ts_col], self.timestamp_unit)
        missing = [c for c in (*BAR_COLUMNS, *self.keep_columns) if c not in table.columns]
        if missing:
            raise ValueError(
                f"{self.path} lacks columns {missing} (has {list(table.columns)}); map them with "
                "data.source.columns={file_column: bars_column}"
            )
        step = self.step_ns
        if step is None:
            step = infer_step_ns(np.sort(index.asi8))
        if self.timestamp_convention == "end":
            index = index - pd.Timedelta(step, unit="ns")
        data = {c: table[c].to_numpy(dtype=np.float64) for c in (*BAR_COLUMNS, *self.keep_columns)}
        frame = clip_dates(bars_frame(index, data), self.start, self.end)
        if self.resample_to is not None:
            frame = resample_bars(frame.sort_index(kind="mergesort"), self.resample_to)
            step = timeframe_to_ns(self.resample_to)
        if self.funding_path is not None:
            rates = load_funding(self.funding_path, symbol=self.funding_symbol)
            # alignment needs sorted opens; validation later decides about unsorted input
            opens = dt_index(frame)
            order = np.argsort(opens.asi8, kind="stable")
            aligned = align_funding(opens[order], rates)
            funding = np.empty_like(aligned)
            funding[order] = aligned
            frame["funding_rate"] = funding
        return frame

    def _read(self) -> pd.DataFrame:
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path} does not exist; set data.source.path")
        if self.path.suffix == ".parquet":
            return pd.read_parquet(self.path)
        header = self.csv_header if self.csv_header is not None else _has_header(self.path)
        if header:
            return pd.read_csv(self.path)
        table = pd.read_csv(self.path, header=None)
        if table.shape[1] != len(BINANCE_KLINE_COLUMNS):
            raise ValueError(
                f"{self.path} has no header and {table.shape[1]} columns; only the 12-column "
                "Binance kline layout is known without a header; add a header row"
            )
        table.columns = list(BINANCE_KLINE_COLUMNS)
        return table

    def _timestamp_column(self, table: pd.DataFrame) -> str:
        if self.timestamp_column is not None:
            if self.timestamp_column not in table.columns:
                raise ValueError(
                    f"timestamp_column={self.timestamp_column!r} is not in {self.path} "
                    f"(columns {list(table.columns)})"
                )
            return self.timestamp_column
        for name in _TIMESTAMP_CANDIDATES:
            if name in table.columns:
                return name
        raise ValueError(
            f"{self.path}: no time column among {_TIMESTAMP_CANDIDATES}; set timestamp_column"
        )


def _has_header(path: Path) -> bool:
    """A CSV has a header if its first field is not a number."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        first = next(csv.reader(fh), [""])
    try:
        float(first[0])
    except ValueError:
        return True
    return False
