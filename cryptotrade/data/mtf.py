"""Multi-timeframe helpers: aggregate base bars to a higher timeframe and join it back causally.

A higher bar covers ``[g * H, (g + 1) * H)`` (epoch-aligned). Its values may be used at base row
``r`` only when the higher bar has closed by the time row ``r`` is observed, i.e. when
``(g + 1) * H <= open[r] + base``: row ``r``'s own close. Until then the previous closed higher bar
is used, so the joined column never contains anything from after the base bar's close.
"""

from __future__ import annotations

import numba
import numpy as np

from cryptotrade.data.sources.resample_nb import resample_bars_nb

_OHLCV = ("open", "high", "low", "close", "volume")


def higher_bars(
    arrays: dict[str, np.ndarray], seconds: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Higher-timeframe bars (same keys as the base arrays) and each higher bar's close time.

    Aggregated by the one bars-to-longer-bars kernel,
    :func:`~cryptotrade.data.sources.resample_nb.resample_bars_nb`; buckets without a base bar
    are skipped (a higher bar exists only where some base bar does).
    """
    period = int(seconds) * 10**9
    ts = np.ascontiguousarray(arrays["ts"], dtype=np.int64)
    origin = int(ts[0]) // period * period
    ohlcv = np.column_stack([arrays[k] for k in _OHLCV]).astype(np.float64)
    out, count = resample_bars_nb(ts, ohlcv, origin, period)
    keep = np.flatnonzero(count > 0)
    start = origin + period * keep
    bars = {"ts": start, **{k: out[keep, j] for j, k in enumerate(_OHLCV)}}
    return bars, start + period


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
