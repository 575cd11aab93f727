"""Incremental parquet cache of a time series over one contiguous, fully downloaded range.

A cache file holds rows indexed by UTC time plus, in the parquet schema metadata, the range
``[start_ms, end_ms)`` that has been *completely* downloaded (including stretches where the
exchange had no data, e.g. before a listing or during an outage). A later request therefore asks
the exchange only for the parts of its range outside that span (:func:`missing_ranges`), and the
cache stays one contiguous range. Files are written to a temporary file in the same directory and
renamed over the old one (:func:`write_cache`), so a crash leaves the previous cache intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cryptotrade.io import atomic_write

_META_KEY = b"cryptotrade.cache"


@dataclass(frozen=True)
class CachedRange:
    """What a cache file holds.

    Attributes:
        frame: Rows indexed by UTC time (``date``), sorted, unique.
        start_ms: Start of the completely downloaded range (ms since epoch), or ``None`` if empty.
        end_ms: Its exclusive end (ms), or ``None`` if empty.
    """

    frame: pd.DataFrame
    start_ms: int | None
    end_ms: int | None


def read_cache(path: Path | None, key: dict[str, Any], columns: list[str]) -> CachedRange:
    """Read a cache file written by :func:`write_cache`; no path or no file is an empty cache.

    Raises:
        ValueError: if the file belongs to another series (``key`` differs) or is not a cache.
    """
    empty = pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in columns},
        index=pd.DatetimeIndex([], tz="UTC", name="date").as_unit("ns"),
    )
    if path is None or not path.exists():
        return CachedRange(empty, None, None)
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ValueError(f"{path} is not a cryptotrade cache file; move it away or delete it")
    meta = json.loads(raw)
    if meta.get("key") != key:
        raise ValueError(
            f"{path} caches {meta.get('key')}, not {key}; delete it or use another cache_dir"
        )
    frame = table.to_pandas().set_index("date")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ns")
    return CachedRange(frame[columns], meta["start_ms"], meta["end_ms"])


def write_cache(
    path: Path, frame: pd.DataFrame, start_ms: int, end_ms: int, key: dict[str, Any]
) -> None:
    """Write ``frame`` and its covered range atomically (temporary file + rename)."""
    # the file stores a plain `date` column (like the shared data files), built straight from
    # the int64 nanoseconds so no timezone information is dropped on the way
    stamps = pd.DatetimeIndex(frame.index).as_unit("ns").asi8
    columns = {"date": pa.array(stamps, type=pa.timestamp("ns", tz="UTC"))}
    columns.update({c: pa.array(frame[c].to_numpy(dtype="float64")) for c in frame.columns})
    table = pa.table(columns)
    meta = {"key": key, "start_ms": int(start_ms), "end_ms": int(end_ms), "version": 1}
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
    )
    with atomic_write(path, fsync=True) as fh:
        pq.write_table(table, fh)


def missing_ranges(
    cached_start: int | None, cached_end: int | None, start: int, end: int
) -> list[tuple[int, int]]:
    """The ranges of ``[start, end)`` to download so the cache covers it and stays contiguous.

    A request that lies beyond the cached range also downloads the stretch between the two, so
    the cache never has a hole.
    """
    if end <= start:
        return []
    if cached_start is None or cached_end is None:
        return [(start, end)]
    ranges = []
    if start < cached_start:
        ranges.append((start, cached_start))
    if end > cached_end:
        ranges.append((cached_end, end))
    return ranges


def merge_rows(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two row sets by timestamp, sorted; a re-downloaded row replaces the cached one."""
    if new.empty:
        return old
    merged = pd.concat([old, new]) if not old.empty else new
    merged = merged[~merged.index.duplicated(keep="last")]
    return merged.sort_index(kind="mergesort")
