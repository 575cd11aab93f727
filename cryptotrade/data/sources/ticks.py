"""Bars from trade dumps (BitMEX-style ticks), resampled by a numba kernel.

A trade file (CSV, CSV.gz or parquet with at least ``timestamp, side, size, price``; BitMEX public
dumps and websocket captures have this layout) is converted once into a compact parquet file of
``ts, price, size, is_buy`` arrays, then aggregated by :func:`resample_trades_nb` into OHLCV bars
with trade count, taker buy/sell volume and VWAP, for one or several timeframes. Bars are
left-closed ``[open, open + step)``, labelled by their open, on the epoch grid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cryptotrade.data.sources.frames import bars_frame, clip_dates, dt_index, parse_date
from cryptotrade.data.sources.funding import FundingFile
from cryptotrade.data.sources.resample_nb import (
    TRADE_BAR_FIELDS,
    fill_empty_nb,
    is_sorted_nb,
    resample_bars_nb,
    resample_trades_nb,
)
from cryptotrade.data.sources.tables import numeric_column, parse_times, read_table
from cryptotrade.errors import DataError
from cryptotrade.io import atomic_write
from cryptotrade.timeframes import infer_step_ns, timeframe_to_ns

_META_KEY = b"cryptotrade.trades"
_BUY = {"buy", "b", "bid"}
_SELL = {"sell", "s", "ask"}


class TickSource:
    """Bars resampled from a trade dump.

    Args:
        path: Trade file: ``.csv``, ``.csv.gz`` or ``.parquet`` with columns ``timestamp``,
            ``side`` (Buy/Sell), ``price`` and the volume column; other columns are ignored.
        timeframe: Bar length of :meth:`load` (``1min``, ``5min``, ``15min``, ``1h`` ...).
        extra_timeframes: More bar lengths :meth:`load_all` returns from the same trades.
        symbol: Keep only trades of this symbol when the file has a ``symbol`` column.
        volume_column: Trade quantity to sum: ``size`` (BitMEX: contracts = USD for XBTUSD),
            ``homeNotional`` (BTC) or ``foreignNotional``.
        empty: Bars without trades: ``drop`` them, or ``ffill`` (flat bar at the previous close,
            zero volume and count).
        start: First bar open time kept, ISO date UTC (inclusive); ``None`` = from the first trade.
        end: Bar open time to stop before (exclusive); ``None`` = to the last trade.
        cache_dir: Where the converted trades parquet is kept (reused while the source file is
            unchanged); ``None`` converts in memory on every load.
        funding_path, funding_symbol, funding_time_column, funding_rate_column,
        funding_rate_interval, funding_coverage: An optional funding history file aligned into
            the ``funding_rate`` column and how to read it (shared with the other file-based
            source; documented and checked by
            :class:`~cryptotrade.data.sources.funding.FundingFile`).
        timezone: Zone of trade and funding times written without one (``UTC``,
            ``Europe/Berlin``); ``None`` refuses such times. Times with a zone (BitMEX's ``Z``)
            and epoch numbers are unaffected.
    """

    def __init__(
        self,
        path: str,
        timeframe: str = "1min",
        extra_timeframes: list[str] | None = None,
        symbol: str | None = None,
        volume_column: str = "size",
        empty: Literal["drop", "ffill"] = "drop",
        start: str | None = None,
        end: str | None = None,
        cache_dir: str | None = None,
        funding_path: str | None = None,
        funding_symbol: str | None = None,
        funding_time_column: str | None = None,
        funding_rate_column: str | None = None,
        funding_rate_interval: str | None = None,
        funding_coverage: Literal["reject", "warn"] = FundingFile.coverage,
        timezone: str | None = None,
    ) -> None:
        if empty not in ("drop", "ffill"):
            raise ValueError(f"empty={empty!r}; use 'drop' (remove bars without trades) or 'ffill'")
        self.path = Path(path)
        self.timeframe = timeframe
        self.timeframes = [timeframe, *(extra_timeframes or [])]
        self.steps = {tf: timeframe_to_ns(tf) for tf in self.timeframes}
        self.symbol = symbol
        self.volume_column = volume_column
        self.empty = empty
        self.start, self.end = start, end
        for value in (start, end):
            if value is not None:
                parse_date(value)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.timezone = timezone
        self.funding = FundingFile.from_settings(
            funding_path,
            funding_symbol,
            funding_time_column,
            funding_rate_column,
            funding_rate_interval,
            funding_coverage,
            bars_symbol=symbol,
        )

    def __repr__(self) -> str:
        return f"TickSource(path={str(self.path)!r}, timeframes={self.timeframes})"

    def load(self) -> pd.DataFrame:
        """Bars of ``timeframe``: OHLCV, trades, buy_volume, sell_volume, vwap (+ funding_rate)."""
        return self.load_all()[self.timeframe]

    def load_all(self) -> dict[str, pd.DataFrame]:
        """Bars for ``timeframe`` and every ``extra_timeframes``, from one read of the trades."""
        ts, price, size, is_buy = self.trades()
        rates = None if self.funding is None else self.funding.rates(self.timezone)
        out = {}
        for tf, step in self.steps.items():
            bars = resample_trades(ts, price, size, is_buy, step, self.empty)
            bars = clip_dates(bars, self.start, self.end)
            if self.funding is not None and rates is not None:
                bars["funding_rate"], bars.attrs["funding"] = self.funding.column(
                    dt_index(bars), rates, bars_name=str(self.path)
                )
            bars.attrs["timeframe"] = tf
            out[tf] = bars
        return out

    # ----------------------------------------------------------------------------------------
    def trades(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ts ns int64, price, size, is_buy int8)`` sorted by time, converted once."""
        if not self.path.is_file():
            raise DataError(f"{self.path} does not exist; set data.source.path to a trade file")
        target = self._converted_path()
        if target is not None and target.exists():
            table = pq.read_table(target)
            meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
            if meta == self._signature():
                return tuple(table[c].to_numpy() for c in ("ts", "price", "size", "is_buy"))
        arrays = self._convert()
        if target is not None:
            _write_trades(target, arrays, self._signature())
        return arrays

    def _converted_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        name = self.path.name.split(".")[0]
        return (
            self.cache_dir / "ticks" / f"{name}.{self.symbol or 'all'}.{self.volume_column}.parquet"
        )

    def _signature(self) -> dict[str, object]:
        stat = self.path.stat()
        return {"source": str(self.path.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "symbol": self.symbol,
                "volume_column": self.volume_column, "timezone": self.timezone}  # fmt: skip

    def _convert(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        wanted = ["timestamp", "side", "price", self.volume_column]
        table = read_table(self.path, usecols=lambda c: c in {*wanted, "symbol"})
        missing = [c for c in wanted if c not in table.columns]
        if missing:
            raise DataError(
                f"{self.path} lacks trade columns {missing}; a trade dump needs timestamp, side, "
                f"price and the volume column (data.source.volume_column={self.volume_column!r})"
            )
        if self.symbol is not None and "symbol" in table.columns:
            table = table[table["symbol"] == self.symbol]
        table = table.reset_index(drop=True)
        if table.empty:
            raise DataError(
                f"{self.path} has no trades for symbol {self.symbol!r}; set data.source.symbol"
            )
        ts = parse_times(table["timestamp"], self.path, "timestamp", timezone=self.timezone)[0].asi8
        side = table["side"].astype(str).str.lower()
        unknown = ~side.isin(_BUY | _SELL)
        if unknown.any():
            raise DataError(
                f"{self.path}: side values {sorted(side[unknown].unique())[:5]} are neither "
                f"Buy nor Sell (first at row {int(np.flatnonzero(unknown)[0])}); fix those rows"
            )
        arrays = (
            ts,
            numeric_column(table, "price", self.path),
            numeric_column(table, self.volume_column, self.path),
            side.isin(_BUY).to_numpy().astype(np.int8),
        )
        if not is_sorted_nb(ts):
            order = np.argsort(ts, kind="stable")  # dumps are sorted; captures may not be
            arrays = (ts[order], arrays[1][order], arrays[2][order], arrays[3][order])
        return arrays


def resample_trades(
    ts: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    is_buy: np.ndarray,
    step_ns: int,
    empty: Literal["drop", "ffill"] = "drop",
) -> pd.DataFrame:
    """Time-sorted trades -> bars frame of :data:`TRADE_BAR_FIELDS` (epoch-aligned bins)."""
    if len(ts) == 0:
        raise ValueError("no trades to resample")
    origin = int(ts[0]) // step_ns * step_ns
    raw = resample_trades_nb(ts, price, size, is_buy, origin, step_ns)
    count = raw[:, 5]
    if empty == "ffill":
        raw, opens = fill_empty_nb(raw, count), origin + step_ns * np.arange(len(count))
    else:
        keep = count > 0
        raw, opens = raw[keep], origin + step_ns * np.flatnonzero(keep)
    index = pd.DatetimeIndex(opens.astype("datetime64[ns]")).tz_localize("UTC").rename("date")
    return pd.DataFrame(raw, index=index, columns=list(TRADE_BAR_FIELDS), copy=False)


def resample_bars(
    bars: pd.DataFrame, timeframe: str, partial: Literal["drop", "keep"] = "drop"
) -> pd.DataFrame:
    """Aggregate a bars frame into longer bars (e.g. 1m -> 1h), epoch-aligned, labelled by open.

    Args:
        bars: Sorted bars frame with unique timestamps and finite OHLCV (its extra columns are
            not carried over).
        timeframe: The longer bar length; a whole multiple of the input spacing.
        partial: ``drop`` output bars missing any input bar (the edges of a file, outages) or
            ``keep`` them. Bins with no input bar at all are always dropped.
    """
    ts = dt_index(bars).asi8
    step = timeframe_to_ns(timeframe)
    base = infer_step_ns(ts)
    if step % base:
        raise ValueError(f"timeframe={timeframe!r} is not a multiple of the input bar length")
    origin = int(ts[0]) // step * step
    ohlcv = bars[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
    # validation only sees the aggregated bars: input defects would vanish into them (a
    # duplicate filling in for a missing bar, a NaN dropped by max), so they are refused here
    dup = np.flatnonzero(np.diff(ts) <= 0)
    if dup.size:
        raise ValueError(
            f"cannot resample to {timeframe}: {dup.size} duplicate or unsorted input bar(s), "
            f"first at {bars.index[dup[0] + 1]}; clean the file or drop resample_to"
        )
    bad = np.flatnonzero(~np.isfinite(ohlcv).all(axis=1))
    if bad.size:
        raise ValueError(
            f"cannot resample to {timeframe}: {bad.size} input bar(s) with NaN/inf OHLCV, "
            f"first at {bars.index[bad[0]]}; clean the file or drop resample_to"
        )
    out, count = resample_bars_nb(ts, np.ascontiguousarray(ohlcv), origin, step)
    keep = count == step // base if partial == "drop" else count > 0
    opens = origin + step * np.flatnonzero(keep)
    index = pd.to_datetime(opens.astype(np.int64), unit="ns", utc=True)
    names = ("open", "high", "low", "close", "volume")
    return bars_frame(index, {c: out[keep, j] for j, c in enumerate(names)})


def _write_trades(target: Path, arrays: tuple[np.ndarray, ...], meta: dict[str, object]) -> None:
    """Atomically write the converted trades (temporary file + rename)."""
    table = pa.table(dict(zip(("ts", "price", "size", "is_buy"), arrays, strict=True)))
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    with atomic_write(target) as fh:
        pq.write_table(table, fh)
