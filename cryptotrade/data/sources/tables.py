"""Reading user files (CSV, CSV.gz, parquet) with one-line errors naming the file, row and fix.

Every file a source reads goes through :func:`read_table`; every numeric column it takes goes
through :func:`numeric_column`, and every time column through :func:`parse_times`. Whatever is
wrong with the file (missing, empty, malformed, wrong delimiter, text in a price column, a date
that is not a date) raises :class:`~cryptotrade.errors.DataError` naming the file, the column or
row, and the setting or edit that fixes it, before anything is computed or cached.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptotrade.data.sources.frames import to_utc
from cryptotrade.errors import DataError

_OTHER_DELIMITERS = (";", "\t", "|")


def _first_line(path: Path) -> str:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        return fh.readline()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def read_table(
    path: str | Path,
    *,
    setting: str = "data.source.path",
    delimiter: str = ",",
    header: bool = True,
    usecols: Any = None,
) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or parquet file by its suffix.

    Args:
        path: The file.
        setting: The config key that names the file, for the error messages.
        delimiter: CSV field separator.
        header: Whether the CSV's first line names the columns.
        usecols: Columns to read from a CSV (a list or a predicate), as in ``pd.read_csv``.

    Raises:
        DataError: the file is missing, empty, not parquet, malformed CSV, or uses another
            delimiter than ``delimiter``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; set {setting} to an existing file")
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(
                f"{path} is not a readable parquet file ({_one_line(exc)}); re-export it, or "
                "give a .csv name if it is CSV"
            ) from exc
    try:
        table = pd.read_csv(path, sep=delimiter, header=0 if header else None, usecols=usecols)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path} is empty; point {setting} at a file with bars") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} is not well-formed CSV ({_one_line(exc)}); fix that line (unbalanced "
            "quotes or a wrong number of fields)"
        ) from exc
    if table.shape[1] == 1:
        first = _first_line(path)
        other = next((d for d in _OTHER_DELIMITERS if d in first and d != delimiter), None)
        if other is not None:
            raise DataError(
                f"{path} has one column with {other!r} in its header line: the file is "
                f"{other!r}-delimited; set data.source.csv_delimiter={other!r}"
            )
    if table.empty:
        raise DataError(f"{path} has a header but no rows; point {setting} at a file with bars")
    return table


def numeric_column(table: pd.DataFrame, column: str, path: str | Path) -> np.ndarray:
    """``table[column]`` as float64; text that is not a number is an error naming the row.

    Empty cells become NaN (the validation policy decides about them); anything else that does
    not parse (``abc``, ``1,5``) raises :class:`DataError` with the row and the CSV line.
    """
    values = table[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64)
    parsed = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & values.notna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{path}: column {column!r} row {row} (CSV line {row + 2}) holds "
            f"{values.iloc[row]!r}, not a number ({bad.size} such row(s)); fix or delete those "
            "rows, or map another column with data.source.columns"
        )
    return parsed.to_numpy(dtype=np.float64)


def parse_times(
    values: pd.Series,
    path: str | Path,
    column: str,
    unit: str = "auto",
    timezone: str | None = None,
) -> tuple[pd.DatetimeIndex, bool]:
    """Parse a time column to UTC; ``(index, naive)`` where ``naive`` says no zone was written.

    Epoch numbers and BitMEX's kdb times (``2024-01-01D00:01:00``) are UTC by definition.
    Other text or datetimes without a zone are taken in
    ``timezone`` (an IANA name such as ``Europe/Berlin``, or ``UTC`` for files written in UTC
    without saying so); without ``timezone`` they are refused: guessing UTC for local times
    shifts every bar by the zone's offset and silently moves it again at each DST change.

    Raises:
        DataError: naming the first row that is not a time, naive times without
            ``timezone``, or a local time that does not exist or is ambiguous in ``timezone``
            (a DST change).
    """
    series = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        if series.isna().any():
            row = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise DataError(
                f"{path}: time column {column!r} row {row} (CSV line {row + 2}) is empty; "
                "fix or delete that row"
            )
        return to_utc(series, unit), False
    kdb = False  # BitMEX's public dumps (2024-01-01D00:01:00.000): UTC by definition
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = pd.DatetimeIndex(series)
    else:
        kdb = bool(series.astype(str).str.match(r"^\d{4}-\d{2}-\d{2}D").all())
        text = series.astype(str).str.replace(r"^(\d{4}-\d{2}-\d{2})D", r"\1T", regex=True)
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", errors="coerce"))
        except (ValueError, TypeError):  # mixed zones / mixed naive and aware
            parsed = pd.DatetimeIndex(
                pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
            )
        bad = np.flatnonzero(parsed.isna())
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{path}: time column {column!r} row {row} (CSV line {row + 2}) holds "
                f"{series.iloc[row]!r}, not an ISO date/time ({bad.size} such row(s)); fix the "
                "rows, or set data.source.timestamp_column to the right column"
            )
    naive = parsed.tz is None
    if naive and kdb and timezone is None:
        timezone = "UTC"
    if naive and timezone is None:
        raise DataError(
            f"{path}: times in {column!r} have no timezone (e.g. {series.iloc[0]!r}); set "
            "data.source.timezone=UTC if they are UTC, or to the zone they were written in "
            "(e.g. Europe/Berlin)"
        )
    if naive:
        zone = str(timezone)
        try:
            parsed = parsed.tz_localize(zone, ambiguous="infer", nonexistent="raise")
        except Exception as exc:  # zoneinfo / pytz raise their own types for DST holes
            raise DataError(
                f"{path}: time column {column!r} cannot be read in timezone {zone!r} "
                f"({_one_line(exc)}); check data.source.timezone"
            ) from exc
    return pd.DatetimeIndex(parsed.tz_convert("UTC")).as_unit("ns"), naive


def has_header(path: Path, delimiter: str = ",") -> bool:
    """A CSV has a header if its first field is not a number."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            first = next(csv.reader(fh, delimiter=delimiter), [""])
    except (OSError, UnicodeDecodeError, csv.Error):
        return True  # read_table reports what is wrong with the file
    try:
        float(first[0] if first else "")
    except ValueError:
        return True
    return False
