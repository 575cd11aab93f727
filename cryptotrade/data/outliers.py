"""Price jumps beyond ``k`` robust standard deviations of the log returns (bad ticks, x1000 bars).

A bar's jump is the largest ``|log(price / previous close)|`` over its open, high, low and close.
The scale is a robust standard deviation of the close-to-close log returns, read from a high
quantile of their absolute deviation from the median (the 99th percentile, or lower on short
series so that the 10 largest moves never count) divided by the normal quantile that goes with
it. A high quantile, unlike the median absolute deviation, follows the fat tails of short bars,
so one ``k`` fits every bar length: real moves on the shared files (1m to 1d, the March 2020 and
May 2019 crashes included) stay below 70 of these units, while a bar x1000 is 129 or more even on
daily bars. A bar whose jump exceeds ``k`` scales is an outlier; the validation policy rejects,
clips or keeps it.
"""

from __future__ import annotations

from statistics import NormalDist

import numba
import numpy as np

_SPARED = 10  # the largest deviations never shape the scale (a few wild bars cannot hide)


def robust_scale(close: np.ndarray) -> float:
    """Robust standard deviation of the close-to-close log returns (0.0 if they never move)."""
    if len(close) < 3:
        return 0.0
    ret = np.diff(np.log(close))
    dev = np.abs(ret - np.median(ret))
    q = min(0.99, 1.0 - _SPARED / len(dev))
    if q <= 0.5:
        return 0.0
    return float(np.quantile(dev, q)) / NormalDist().inv_cdf((1.0 + q) / 2.0)


@numba.njit(cache=True)
def jumps_nb(ohlc: np.ndarray, bound: float, clip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flag (and optionally clip) bars whose prices jump more than ``bound`` in log from the
    previous close.

    Args:
        ohlc: ``(n, 4)`` float64 open, high, low, close (positive).
        bound: Largest allowed ``|log(price / previous close)|``.
        clip: Clamp each flagged bar's prices into ``previous close * exp(+-bound)``; the next
            bar is then measured from the clamped close, so a lone bad bar is repaired and a
            genuine level shift is spread over several bars. Without ``clip`` a bar is measured
            from the last unflagged close, so a lone bad bar is flagged alone (not with the
            bar after it, which jumps back).

    Returns:
        ``(flagged, out)``: a bool mask of outlier bars and the (clipped) prices.
    """
    n = ohlc.shape[0]
    out = ohlc.copy()
    flagged = np.zeros(n, dtype=np.bool_)
    ref = out[0, 3]
    for i in range(1, n):
        lo, hi = ref * np.exp(-bound), ref * np.exp(bound)
        for j in range(4):
            if out[i, j] < lo or out[i, j] > hi:
                flagged[i] = True
        if flagged[i] and clip:
            for j in range(4):
                out[i, j] = min(max(out[i, j], lo), hi)
        if clip or not flagged[i]:
            ref = out[i, 3]
    return flagged, out


def find_jumps(
    ohlc: np.ndarray, k: float, clip: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """Outlier bars of ``ohlc`` beyond ``k`` robust scales: ``(flagged, prices, scale)``."""
    prices = np.ascontiguousarray(ohlc, dtype=np.float64)
    scale = robust_scale(prices[:, 3])
    if scale <= 0 or len(prices) < 3:
        return np.zeros(len(prices), dtype=bool), prices, scale
    flagged, out = jumps_nb(prices, k * scale, clip)
    return flagged, out, scale
