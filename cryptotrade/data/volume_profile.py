"""Rolling volume profile (VPVR): point of control and value area over the last ``window`` bars.

For each bar ``t`` the price range ``[min low, max high]`` of bars ``t-window+1..t`` is cut into
``bins`` equal bins and every bar's volume is spread over the bins its ``[low, high]`` range
covers, in proportion to the overlap (all of it into one bin for a bar with ``low == high``).
The point of control (POC) is the centre of the fullest bin (the lowest one on ties). The value
area grows from the POC one bin at a time towards the fuller neighbour (upwards on ties, as in
the CBOT Market Profile rule) until it holds ``value_area`` of the window's volume; its upper
and lower edges are the value-area high (VAH) and low (VAL). A window without volume, or without
a price range, puts all three at the close.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _profile_nb(
    high: np.ndarray, low: np.ndarray, volume: np.ndarray, start: int, stop: int,
    lo: float, width: float, hist: np.ndarray,
) -> None:
    """Fill ``hist`` with the volume of bars ``start..stop-1`` spread over the price bins."""
    bins = hist.shape[0]
    hist[:] = 0.0
    for j in range(start, stop):
        b0 = min(int((low[j] - lo) / width), bins - 1)
        span = high[j] - low[j]
        if span <= 0.0:
            hist[b0] += volume[j]
            continue
        b1 = min(int((high[j] - lo) / width), bins - 1)
        if b0 == b1:
            hist[b0] += volume[j]
            continue
        per_price = volume[j] / span
        for b in range(b0, b1 + 1):
            top = min(high[j], lo + (b + 1) * width)
            bottom = max(low[j], lo + b * width)
            if top > bottom:
                hist[b] += per_price * (top - bottom)


@numba.njit(cache=True)
def _value_area_nb(hist: np.ndarray, share: float) -> tuple:
    """(poc bin, lowest bin, highest bin) of the value area holding ``share`` of the volume."""
    bins = hist.shape[0]
    poc = 0
    total = 0.0
    for b in range(bins):
        total += hist[b]
        if hist[b] > hist[poc]:
            poc = b
    lo_b = poc
    hi_b = poc
    acc = hist[poc]
    target = share * total
    while acc < target and (lo_b > 0 or hi_b < bins - 1):
        above = hist[hi_b + 1] if hi_b < bins - 1 else -1.0
        below = hist[lo_b - 1] if lo_b > 0 else -1.0
        if above >= below:
            hi_b += 1
            acc += above
        else:
            lo_b -= 1
            acc += below
    return poc, lo_b, hi_b


@numba.njit(cache=True)
def vpvr_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int,
    bins: int, value_area: float,
) -> tuple:
    """Rolling POC, VAH and VAL price levels; NaN for the first ``window - 1`` rows."""
    n = close.shape[0]
    poc = np.full(n, np.nan)
    vah = np.full(n, np.nan)
    val = np.full(n, np.nan)
    hist = np.zeros(bins)
    for i in range(window - 1, n):
        start = i - window + 1
        lo = low[start]
        hi = high[start]
        vol = 0.0
        for j in range(start, i + 1):
            lo = min(lo, low[j])
            hi = max(hi, high[j])
            vol += volume[j]
        if hi <= lo or vol <= 0.0:
            poc[i] = close[i]
            vah[i] = close[i]
            val[i] = close[i]
            continue
        width = (hi - lo) / bins
        _profile_nb(high, low, volume, start, i + 1, lo, width, hist)
        p, lo_b, hi_b = _value_area_nb(hist, value_area)
        poc[i] = lo + (p + 0.5) * width
        vah[i] = lo + (hi_b + 1) * width
        val[i] = lo + lo_b * width
    return poc, vah, val
