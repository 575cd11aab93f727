"""numba kernels: trades -> bars and bars -> longer bars, in one pass over sorted arrays.

Bars are left-closed ``[open, open + step)`` and labelled by their open time; bin ``k`` opens at
``origin + k * step``. The kernels return every bin between the first and the last one, empty bins
included (``count == 0``); what to do with empty bins (drop or forward-fill) is decided by the
caller, in :func:`fill_empty`.
"""

from __future__ import annotations

import numba
import numpy as np

# columns of the trade-kernel output, in order
TRADE_BAR_FIELDS = (
    "open", "high", "low", "close", "volume", "trades", "buy_volume", "sell_volume", "vwap",
)  # fmt: skip


@numba.njit(cache=True)
def is_sorted_nb(ts: np.ndarray) -> bool:
    """Whether int64 timestamps never decrease."""
    for i in range(1, ts.shape[0]):  # noqa: SIM110 -- an explicit loop is what numba compiles
        if ts[i] < ts[i - 1]:
            return False
    return True


@numba.njit(cache=True)
def resample_trades_nb(
    ts: np.ndarray, price: np.ndarray, size: np.ndarray, is_buy: np.ndarray, origin: int, step: int
) -> np.ndarray:
    """Aggregate time-sorted trades into bars.

    Args:
        ts: Trade times, int64 ns, non-decreasing.
        price: Trade prices.
        size: Trade sizes (in the unit chosen for volume).
        is_buy: 1 where the taker bought, 0 where it sold.
        origin: Open time of bin 0 (<= ts[0]), ns.
        step: Bar length, ns.

    Returns:
        ``(n_bins, 9)`` float64 array of :data:`TRADE_BAR_FIELDS` from bin 0 to the last trade's
        bin; empty bins have NaN prices, zero volume and count.
    """
    n = ts.shape[0]
    n_bins = (ts[n - 1] - origin) // step + 1 if n > 0 else 0
    out = np.zeros((n_bins, 9))
    for k in range(n_bins):
        out[k, 0] = out[k, 1] = out[k, 2] = out[k, 3] = out[k, 8] = np.nan
    if n == 0:
        return out
    # accumulate one bar in registers and write it out when the bin changes
    cur = (ts[0] - origin) // step
    o = h = lo = c = price[0]
    vol = buy = notional = 0.0
    count = 0
    for i in range(n):
        b = (ts[i] - origin) // step
        p = price[i]
        if b != cur:
            _write_bar(out, cur, o, h, lo, c, vol, count, buy, notional)
            cur = b
            o = h = lo = p
            vol = buy = notional = 0.0
            count = 0
        h = max(h, p)
        lo = min(lo, p)
        c = p
        vol += size[i]
        notional += p * size[i]
        if is_buy[i]:
            buy += size[i]
        count += 1
    _write_bar(out, cur, o, h, lo, c, vol, count, buy, notional)
    return out


@numba.njit(cache=True, inline="always")
def _write_bar(out, k, o, h, lo, c, vol, count, buy, notional):  # type: ignore[no-untyped-def]
    out[k, 0] = o
    out[k, 1] = h
    out[k, 2] = lo
    out[k, 3] = c
    out[k, 4] = vol
    out[k, 5] = count
    out[k, 6] = buy
    out[k, 7] = vol - buy
    out[k, 8] = notional / vol if vol > 0 else c


@numba.njit(cache=True)
def resample_bars_nb(
    ts: np.ndarray, ohlcv: np.ndarray, origin: int, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted bars into longer ones: first open, max high, min low, last close, summed volume.

    Args:
        ts: Bar open times, int64 ns, strictly increasing.
        ohlcv: ``(n, 5)`` float64 open, high, low, close, volume.
        origin: Open time of output bin 0 (<= ts[0]), ns.
        step: Output bar length, ns.

    Returns:
        ``(bars, count)``: ``(n_bins, 5)`` bars (NaN prices where empty) and the number of input
        bars in each bin (to tell complete from partial bins).
    """
    n = ts.shape[0]
    n_bins = (ts[n - 1] - origin) // step + 1 if n > 0 else 0
    out = np.full((n_bins, 5), np.nan)
    count = np.zeros(n_bins, dtype=np.int64)
    for i in range(n):
        b = (ts[i] - origin) // step
        if count[b] == 0:
            out[b, 0] = ohlcv[i, 0]
            out[b, 1] = ohlcv[i, 1]
            out[b, 2] = ohlcv[i, 2]
            out[b, 4] = 0.0
        else:
            out[b, 1] = max(out[b, 1], ohlcv[i, 1])
            out[b, 2] = min(out[b, 2], ohlcv[i, 2])
        out[b, 3] = ohlcv[i, 3]
        out[b, 4] += ohlcv[i, 4]
        count[b] += 1
    return out, count


@numba.njit(cache=True)
def fill_empty_nb(bars: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Forward-fill empty bins: prices (and vwap) = previous close, additive columns 0.

    Works on trade bars (9 columns) and plain bars (5); columns 0-3 are OHLC, the rest additive
    except column 8 (vwap), which takes the previous close. Leading empty bins stay NaN.
    """
    out = bars.copy()
    last = np.nan
    for k in range(out.shape[0]):
        if count[k] > 0:
            last = out[k, 3]
            continue
        for j in range(out.shape[1]):
            out[k, j] = last if (j < 4 or j == 8) else 0.0
    return out
