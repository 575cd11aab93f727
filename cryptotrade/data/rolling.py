"""Windowed statistics of bars: log returns, rolling volatility, rolling VWAP, signed-volume ratio.

Same conventions as :mod:`cryptotrade.data.indicators` (causal, NaN during warm-up, float64);
TA-Lib has none of these, so their tests are hand-computed oracles and pandas.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def anchored_sums_step_nb(
    x: np.ndarray, i: int, n: int, ref: float, s: float, s2: float, since: int
) -> tuple[float, float, float, int]:
    """Advance the anchored window sums of ``x[i - n + 1 : i + 1]`` to row ``i``.

    ``s`` and ``s2`` are sums of ``x - ref`` and its square over the window. Every ``n`` rows
    (``since == n``) the anchor moves to ``x[i]`` and the sums are recomputed from scratch:
    small deviations avoid the cancellation of raw sums of squares, and the restart stops
    rounding error from accumulating over millions of rows. Start with ``since = n``.

    Returns:
        The new ``(ref, s, s2, since)``.
    """
    if since == n:
        ref = x[i]
        s = 0.0
        s2 = 0.0
        for j in range(i - n + 1, i + 1):
            d = x[j] - ref
            s += d
            s2 += d * d
        return ref, s, s2, 1
    dn = x[i] - ref
    do = x[i - n] - ref
    return ref, s + dn - do, s2 + dn * dn - do * do, since + 1


@numba.njit(cache=True, nogil=True)
def rolling_std_nb(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Rolling standard deviation over ``n`` values.

    Running sums of deviations from an anchor value inside the window, re-anchored (recomputed
    from scratch) every ``n`` rows: small deviations avoid the cancellation of raw sums of
    squares, and the restart stops rounding error from accumulating over millions of rows.
    """
    out = np.full(x.shape[0], np.nan)
    if n > x.shape[0] or n - ddof <= 0:
        return out
    ref = 0.0
    s = 0.0
    s2 = 0.0
    since = n  # rows since the last re-anchoring
    for i in range(n - 1, x.shape[0]):
        ref, s, s2, since = anchored_sums_step_nb(x, i, n, ref, s, s2, since)
        var = (s2 - s * s / n) / (n - ddof)
        out[i] = math.sqrt(var) if var > 0 else 0.0
    return out


@numba.njit(cache=True, nogil=True)
def _window_sums_nb(values: np.ndarray, n: int, out: np.ndarray) -> None:
    """``out[i] = sum(values[i-n+1 : i+1])`` from row ``n - 1``, summed afresh for every row.

    Exact window sums (no running total) keep an all-zero window exactly zero.
    """
    for i in range(n - 1, values.shape[0]):
        total = 0.0
        for j in range(i - n + 1, i + 1):
            total += values[j]
        out[i] = total


@numba.njit(cache=True, nogil=True)
def obv_ratio_nb(close: np.ndarray, volume: np.ndarray, n: int) -> np.ndarray:
    """Signed volume over the last ``n`` bars divided by their total volume, in [-1, 1].

    The windowed, scale-free form of OBV: a feature that does not depend on where history starts.
    """
    size = close.shape[0]
    signed = np.zeros(size)
    for i in range(1, size):
        if close[i] > close[i - 1]:
            signed[i] = volume[i]
        elif close[i] < close[i - 1]:
            signed[i] = -volume[i]
    num = np.full(size, np.nan)
    den = np.full(size, np.nan)
    _window_sums_nb(signed, n, num)
    _window_sums_nb(volume, n, den)
    out = np.full(size, np.nan)
    # row n - 1's window holds bar 0, which has no previous close: the first value is at row n
    for i in range(n, size):
        out[i] = num[i] / den[i] if den[i] > 0 else 0.0
    return out


@numba.njit(cache=True, nogil=True)
def vwap_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, n: int
) -> np.ndarray:
    """Rolling VWAP of the typical price ``(h + l + c) / 3`` over ``n`` bars; close if no volume."""
    size = close.shape[0]
    pv = np.empty(size)
    for i in range(size):
        pv[i] = (high[i] + low[i] + close[i]) / 3.0 * volume[i]
    num = np.full(size, np.nan)
    den = np.full(size, np.nan)
    _window_sums_nb(pv, n, num)
    _window_sums_nb(volume, n, den)
    out = np.full(size, np.nan)
    for i in range(n - 1, size):
        out[i] = num[i] / den[i] if den[i] > 0 else close[i]
    return out


@numba.njit(cache=True, nogil=True)
def log_return_nb(x: np.ndarray, lag: int) -> np.ndarray:
    """``log(x[t] / x[t - lag])``; NaN for the first ``lag`` rows."""
    out = np.full(x.shape[0], np.nan)
    for i in range(lag, x.shape[0]):
        out[i] = math.log(x[i] / x[i - lag])
    return out


@numba.njit(cache=True, nogil=True)
def rolling_volatility_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) of the last ``n`` one-bar log returns; first at ``n``."""
    out = np.full(x.shape[0], np.nan)
    if n + 1 > x.shape[0]:
        return out
    r = log_return_nb(x, 1)
    out[1:] = rolling_std_nb(r[1:], n, 1)
    return out
