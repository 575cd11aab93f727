"""Bar lengths and the calendar: the one timeframe grammar every part of cryptotrade parses.

``1m``, ``15min``, ``1h``, ``4h``, ``1d`` (ccxt and pandas spellings alike) become integer
nanoseconds; every source, the validation policy, the feature set and the synthetic market read
bar lengths through :func:`timeframe_to_ns`, so a string accepted in one place is accepted
everywhere. :data:`SECONDS_PER_YEAR` is the one annualisation constant (crypto trades every day).
"""

from __future__ import annotations

import re

import numpy as np

_UNITS_NS = {
    "s": 1_000_000_000,
    "sec": 1_000_000_000,
    "m": 60_000_000_000,
    "min": 60_000_000_000,
    "t": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
}
SECONDS_PER_YEAR = 365 * 24 * 3600  # crypto trades every day: a year is 365 days of bars
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")


def timeframe_to_ns(timeframe: str) -> int:
    """Length of one bar in nanoseconds.

    Accepts ccxt spellings (``1m``, ``4h``, ``1d``, ``1w``) and pandas ones (``1min``, ``15T``,
    ``1H``, ``1D``). Calendar months are refused: they have no fixed length.

    Raises:
        ValueError: naming the string and the accepted spellings.
    """
    match = _PATTERN.match(str(timeframe))
    unit = match.group(2) if match else ""
    # ccxt's "1M" is a month; every other unit is case-insensitive
    key = unit if unit == "M" else unit.lower()
    if match is None or key not in _UNITS_NS or int(match.group(1)) <= 0:
        raise ValueError(
            f"timeframe={timeframe!r} is not a fixed bar length; use e.g. '1m', '5min', '1h', "
            "'4h', '1d' or '1w' (units s, m|min, h, d, w; months have no fixed length)"
        )
    return int(match.group(1)) * _UNITS_NS[key]


def timeframe_seconds(timeframe: str) -> int:
    """Length of one bar in whole seconds (``15m`` -> 900); sub-second bars are refused."""
    step = timeframe_to_ns(timeframe)
    if step % 1_000_000_000:
        raise ValueError(f"timeframe={timeframe!r} is not a whole number of seconds")
    return step // 1_000_000_000


def timeframe_to_ms(timeframe: str) -> int:
    """Length of one bar in milliseconds (ccxt's unit)."""
    return timeframe_to_ns(timeframe) // 1_000_000


def infer_step_ns(index_ns: np.ndarray) -> int:
    """The most common positive spacing of sorted int64 nanosecond timestamps.

    Raises:
        ValueError: if fewer than two distinct timestamps are given.
    """
    diffs = np.diff(np.asarray(index_ns, dtype=np.int64))
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        raise ValueError(
            "cannot infer the bar length from fewer than two distinct timestamps; set timeframe"
        )
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


def format_ns(step_ns: int) -> str:
    """Shortest readable spelling of a bar length (``3600000000000`` -> ``1h``)."""
    for unit, size in (
        ("w", _UNITS_NS["w"]),
        ("d", _UNITS_NS["d"]),
        ("h", _UNITS_NS["h"]),
        ("min", _UNITS_NS["m"]),
        ("s", _UNITS_NS["s"]),
    ):
        if step_ns % size == 0:
            return f"{step_ns // size}{unit}"
    return f"{step_ns}ns"
