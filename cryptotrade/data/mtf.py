"""Multi-timeframe helpers: aggregate base bars to a higher timeframe and join it back causally.

A higher bar covers ``[g * H, (g + 1) * H)`` (epoch-aligned). Its values may be used at base row
``r`` only when the higher bar has closed by the time row ``r`` is observed, i.e. when
``(g + 1) * H <= open[r] + base``: row ``r``'s own close. Until then the previous closed higher bar
is used, so the joined column never contains anything from after the base bar's close.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def resample_nb(
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    period: int,
) -> tuple:
    """OHLCV of the epoch-aligned ``period``-ns buckets the bars fall into (empty ones skipped).

    Returns (bucket open time, open, high, low, close, volume), one entry per non-empty bucket.
    """
    n = ts.shape[0]
    start = np.empty(n, dtype=np.int64)
    ro = np.empty(n)
    rh = np.empty(n)
    rl = np.empty(n)
    rc = np.empty(n)
    rv = np.empty(n)
    k = -1
    current = np.int64(-1)
    for i in range(n):
        bucket = ts[i] // period
        if k < 0 or bucket != current:
            k += 1
            current = bucket
            start[k] = bucket * period
            ro[k] = o[i]
            rh[k] = h[i]
            rl[k] = lo[i]
            rv[k] = 0.0
        rh[k] = max(rh[k], h[i])
        rl[k] = min(rl[k], lo[i])
        rc[k] = c[i]
        rv[k] += v[i]
    k += 1
    return start[:k], ro[:k], rh[:k], rl[:k], rc[:k], rv[:k]


def resample_bars(
    arrays: dict[str, np.ndarray], seconds: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Higher-timeframe bars (same keys as the base arrays) and each higher bar's close time."""
    period = int(seconds) * 10**9
    start, o, h, lo, c, v = resample_nb(
        arrays["ts"],
        arrays["open"],
        arrays["high"],
        arrays["low"],
        arrays["close"],
        arrays["volume"],
        period,
    )
    return {"ts": start, "open": o, "high": h, "low": lo, "close": c, "volume": v}, start + period


@numba.njit(cache=True, nogil=True)
def join_closed_nb(group_end: np.ndarray, values: np.ndarray, row_close: np.ndarray) -> np.ndarray:
    """For each base row, the value of the last higher bar that closed by the row's close."""
    out = np.full(row_close.shape[0], np.nan)
    g = -1
    for r in range(row_close.shape[0]):
        while g + 1 < group_end.shape[0] and group_end[g + 1] <= row_close[r]:
            g += 1
        if g >= 0:
            out[r] = values[g]
    return out
