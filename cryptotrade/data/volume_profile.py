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


@numba.njit(cache=True, nogil=True)
def _profile_nb(
    high: np.ndarray,
    low: np.ndarray,
    volume: np.ndarray,
    density: np.ndarray,
    start: int,
    stop: int,
    lo: float,
    width: float,
    hist: np.ndarray,
    diff: np.ndarray,
) -> None:
    """Fill ``hist`` with the volume of bars ``start..stop-1`` spread over the price bins.

    ``density`` is each bar's volume per unit of price (volume / (high - low)), computed once.
    """
    bins = hist.shape[0]
    inv = 1.0 / width
    hist[:] = 0.0
    # bins fully inside a bar's range all get density * width: add that as a difference
    # (+ at the first full bin, - after the last) and integrate once, so each bar costs O(1)
    diff[:] = 0.0
    for j in range(start, stop):
        b0 = min(int((low[j] - lo) * inv), bins - 1)
        b1 = min(int((high[j] - lo) * inv), bins - 1)
        if b0 == b1:
            hist[b0] += volume[j]
            continue
        d = density[j]
        hist[b0] += d * (lo + (b0 + 1) * width - low[j])
        hist[b1] += d * (high[j] - (lo + b1 * width))
        if b1 > b0 + 1:
            diff[b0 + 1] += d * width
            diff[b1] -= d * width
    level = 0.0
    for b in range(bins):
        level += diff[b]
        hist[b] += level


@numba.njit(cache=True, nogil=True)
def rolling_extreme_nb(x: np.ndarray, window: int, sign: float) -> np.ndarray:
    """Rolling max (``sign=1``) or min (``sign=-1``) over ``window`` rows (monotonic deque)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    queue = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(n):
        while tail > head and sign * x[queue[tail - 1]] <= sign * x[i]:
            tail -= 1
        queue[tail] = i
        tail += 1
        if queue[head] <= i - window:
            head += 1
        if i >= window - 1:
            out[i] = x[queue[head]]
    return out


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def vpvr_nb(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    window: int,
    bins: int,
    value_area: float,
) -> tuple:
    """Rolling POC, VAH and VAL price levels; NaN for the first ``window - 1`` rows."""
    n = close.shape[0]
    poc = np.full(n, np.nan)
    vah = np.full(n, np.nan)
    val = np.full(n, np.nan)
    hist = np.zeros(bins)
    diff = np.zeros(bins + 1)
    top = rolling_extreme_nb(high, window, 1.0)
    bottom = rolling_extreme_nb(low, window, -1.0)
    density = np.empty(n)
    # bars with volume in the window, counted exactly: a running float sum of the volumes is
    # left a hair off zero by rounding once they leave, which hid all-zero windows
    active = 0
    for j in range(n):
        span = high[j] - low[j]
        density[j] = volume[j] / span if span > 0 else 0.0
        if j < window - 1 and volume[j] > 0.0:
            active += 1
    for i in range(window - 1, n):
        start = i - window + 1
        if i >= window and volume[start - 1] > 0.0:
            active -= 1
        if volume[i] > 0.0:
            active += 1
        lo = bottom[i]
        hi = top[i]
        # a window without volume or without a price range has no profile: use the close
        if hi <= lo or active == 0:
            poc[i] = close[i]
            vah[i] = close[i]
            val[i] = close[i]
            continue
        width = (hi - lo) / bins
        _profile_nb(high, low, volume, density, start, i + 1, lo, width, hist, diff)
        p, lo_b, hi_b = _value_area_nb(hist, value_area)
        poc[i] = lo + (p + 0.5) * width
        vah[i] = lo + (hi_b + 1) * width
        val[i] = lo + lo_b * width
    return poc, vah, val
