"""Causal technical indicators as numba kernels over float64 arrays.

Every ``*_nb`` kernel is ``@njit(cache=True)``, reads only ``x[:t+1]`` to produce ``out[t]`` and
marks its warm-up rows with ``NaN``. Where TA-Lib has the indicator, the kernel reproduces TA-Lib's
definition, seeding and warm-up (``TA_SetCompatibility(DEFAULT)``, unstable period 0), so values
agree to rounding error:

==========  ===================================================  ==========================
kernel      definition                                           first valid index
==========  ===================================================  ==========================
sma_nb      mean of the last ``n`` values                         ``n - 1``
ema_nb      ``k = 2 / (n + 1)``, seeded with the SMA of ``n``     ``n - 1``
rsi_nb      Wilder averages of gains and losses (``1 / n``)       ``n``
macd_nb     EMA(fast) - EMA(slow), both seeded at ``slow - 1``;   ``slow + signal - 2``
            signal = EMA(signal) of the line; hist = difference
atr_nb      Wilder average of the true range                      ``n``
bbands_nb   SMA +- ``k`` population standard deviations           ``n - 1``
obv_nb      on-balance volume, ``obv[0] = volume[0]``             ``0``
==========  ===================================================  ==========================

Kernels TA-Lib does not have (rolling VWAP, log returns, rolling volatility, signed-volume
ratio) live in :mod:`cryptotrade.data.rolling`, the rolling volume profile in
:mod:`cryptotrade.data.volume_profile`; they follow the same conventions.
The public wrappers (``sma(x, 20)`` ...) validate their arguments and call the kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

# windowed statistics TA-Lib does not have; re-exported so every kernel is one import away
from cryptotrade.data.rolling import (  # noqa: F401
    anchored_sums_step_nb,
    log_return_nb,
    obv_ratio_nb,
    rolling_std_nb,
    rolling_volatility_nb,
    vwap_nb,
)

# TA-Lib treats |x| < 1e-14 as zero (TA_IS_ZERO); RSI uses it for a flat window.
_TA_EPSILON = 1e-14


@numba.njit(cache=True, nogil=True)
def _nan_prefix_nb(out: np.ndarray, first: int) -> np.ndarray:
    """Mark the first ``first`` rows of ``out`` as warm-up (NaN); the rest is written later."""
    out[: min(first, out.shape[0])] = np.nan
    return out


@numba.njit(cache=True, nogil=True)
def sma_nb(x: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    """Simple moving average of the last ``n`` values, written into and returned as ``out``."""
    _nan_prefix_nb(out, n - 1)
    if n > x.shape[0]:
        return out
    total = 0.0
    for i in range(n - 1):
        total += x[i]
    for i in range(n - 1, x.shape[0]):
        # same order of operations as TA-Lib's SMA: add the newest, emit, drop the oldest
        total += x[i]
        out[i] = total / n
        total -= x[i - n + 1]
    return out


@numba.njit(cache=True, nogil=True)
def _two_steps_nb(
    prev: float, a: float, a2: float, ab: float, b: float, u: float, v: float
) -> tuple:
    """Two steps of ``y = a * y + b * input`` (inputs ``u`` then ``v``): ``(y after u, y after v)``.

    The second value is ``a^2 * prev + (a * b * u + b * v)``: one multiply-add on the
    loop-carried chain per two rows instead of two, so exponential smoothers run at about twice
    the speed their latency would allow. The first value uses the one-step formula, which is also
    what a series ending there computes, so truncated inputs give bit-identical rows.
    """
    return prev * a + u * b, prev * a2 + (u * ab + v * b)


@numba.njit(cache=True, nogil=True)
def _ema_seeded_nb(x: np.ndarray, n: int, seed_at: int, out: np.ndarray) -> None:
    """EMA of ``x`` into ``out[seed_at:]``, seeded with the SMA of the ``n`` values ending there."""
    k = 2.0 / (n + 1)
    keep = 1.0 - k
    total = 0.0
    for i in range(seed_at - n + 1, seed_at + 1):
        total += x[i]
    prev = total / n
    out[seed_at] = prev
    # prev * (1 - k) + x * k (TA-Lib: (x - prev) * k + prev, equal to rounding), two rows a step
    a2, ab = keep * keep, keep * k
    i = seed_at + 1
    while i + 1 < x.shape[0]:
        out[i], prev = _two_steps_nb(prev, keep, a2, ab, k, x[i], x[i + 1])
        out[i + 1] = prev
        i += 2
    if i < x.shape[0]:
        out[i] = prev * keep + x[i] * k


@numba.njit(cache=True, nogil=True)
def ema_nb(x: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    """Exponential moving average, ``k = 2 / (n + 1)``, seeded with the SMA of the first ``n``."""
    _nan_prefix_nb(out, n - 1)
    if n <= x.shape[0]:
        _ema_seeded_nb(x, n, n - 1, out)
    return out


@numba.njit(cache=True, nogil=True)
def rsi_nb(x: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    """Wilder's relative strength index in [0, 100]; 0 for a perfectly flat window (as TA-Lib)."""
    _nan_prefix_nb(out, n)
    if n >= x.shape[0]:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = x[i] - x[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    gain /= n
    loss /= n
    total = gain + loss
    out[n] = 100.0 * (gain / total) if abs(total) >= _TA_EPSILON else 0.0
    # Wilder smoothing (prev * (n - 1) + new) / n, as two multiplications instead of a division
    keep = (n - 1) / n
    add = 1.0 / n
    a2, ab = keep * keep, keep * add
    i = n + 1
    while i < x.shape[0]:
        d0 = x[i] - x[i - 1]
        if i + 1 < x.shape[0]:
            d1 = x[i + 1] - x[i]
            g0, gain = _two_steps_nb(gain, keep, a2, ab, add, max(d0, 0.0), max(d1, 0.0))
            l0, loss = _two_steps_nb(loss, keep, a2, ab, add, max(-d0, 0.0), max(-d1, 0.0))
            out[i] = _rsi_value(g0, l0)
            out[i + 1] = _rsi_value(gain, loss)
        else:
            gain = gain * keep + max(d0, 0.0) * add
            loss = loss * keep + max(-d0, 0.0) * add
            out[i] = _rsi_value(gain, loss)
        i += 2
    return out


@numba.njit(cache=True, nogil=True)
def _rsi_value(gain: float, loss: float) -> float:
    total = gain + loss
    return 100.0 * (gain / total) if abs(total) >= _TA_EPSILON else 0.0


@numba.njit(cache=True, nogil=True)
def macd_nb(
    x: np.ndarray,
    fast: int,
    slow: int,
    signal: int,
    line: np.ndarray,
    sig: np.ndarray,
    hist: np.ndarray,
) -> tuple:
    """MACD line, signal line and histogram with TA-Lib's alignment (all start together).

    TA-Lib seeds the fast EMA at the slow EMA's first row (with the SMA of the ``fast`` values
    ending there), and the signal EMA with the SMA of the first ``signal`` line values.
    """
    size = x.shape[0]
    first = slow + signal - 2
    _nan_prefix_nb(line, first)
    _nan_prefix_nb(sig, first)
    _nan_prefix_nb(hist, first)
    if first >= size:
        return line, sig, hist
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (signal + 1)
    rf, rs, rg = 1.0 - kf, 1.0 - ks, 1.0 - kg
    ef = 0.0
    es = 0.0
    for i in range(slow):
        es += x[i]
        if i >= slow - fast:
            ef += x[i]
    ef /= fast
    es /= slow
    seed = ef - es
    for i in range(slow, first + 1):
        ef = ef * rf + x[i] * kf
        es = es * rs + x[i] * ks
        seed += ef - es
    m = ef - es
    s = seed / signal
    line[first] = m
    sig[first] = s
    hist[first] = m - s
    rf2, rfk, rs2, rsk, rg2, rgk = rf * rf, rf * kf, rs * rs, rs * ks, rg * rg, rg * kg
    i = first + 1
    while i < size:
        if i + 1 < size:
            f0, ef = _two_steps_nb(ef, rf, rf2, rfk, kf, x[i], x[i + 1])
            s0, es = _two_steps_nb(es, rs, rs2, rsk, ks, x[i], x[i + 1])
            m0 = f0 - s0
            m = ef - es
            g0, s = _two_steps_nb(s, rg, rg2, rgk, kg, m0, m)
            line[i], sig[i], hist[i] = m0, g0, m0 - g0
            line[i + 1], sig[i + 1], hist[i + 1] = m, s, m - s
        else:
            ef = ef * rf + x[i] * kf
            es = es * rs + x[i] * ks
            m = ef - es
            s = s * rg + m * kg
            line[i], sig[i], hist[i] = m, s, m - s
        i += 2
    return line, sig, hist


@numba.njit(cache=True, nogil=True)
def atr_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int, out: np.ndarray
) -> np.ndarray:
    """Average true range: Wilder average of the true range seeded with its SMA over bars 1..n."""
    size = close.shape[0]
    _nan_prefix_nb(out, n)
    if n >= size:
        return out
    prev = 0.0
    # true range = max(high, prev close) - min(low, prev close): the same float as TA-Lib's
    # max(high - low, |high - prev close|, |low - prev close|), in fewer operations
    for i in range(1, n + 1):
        prev += max(high[i], close[i - 1]) - min(low[i], close[i - 1])
    prev /= n
    out[n] = prev
    keep = (n - 1) / n
    add = 1.0 / n
    a2, ab = keep * keep, keep * add
    i = n + 1
    while i + 1 < size:
        tr0 = max(high[i], close[i - 1]) - min(low[i], close[i - 1])
        tr1 = max(high[i + 1], close[i]) - min(low[i + 1], close[i])
        out[i], prev = _two_steps_nb(prev, keep, a2, ab, add, tr0, tr1)
        out[i + 1] = prev
        i += 2
    if i < size:
        out[i] = prev * keep + (max(high[i], close[i - 1]) - min(low[i], close[i - 1])) * add
    return out


@numba.njit(cache=True, nogil=True)
def bbands_nb(
    x: np.ndarray, n: int, k: float, upper: np.ndarray, mid: np.ndarray, lower: np.ndarray
) -> tuple:
    """Bollinger bands (upper, middle, lower): SMA +- ``k`` population standard deviations.

    One pass over the anchored sums of :func:`anchored_sums_step_nb` (re-anchored every ``n`` rows),
    which give both the mean and the deviation; multiplications by ``1 / n`` instead of
    divisions.
    """
    size = x.shape[0]
    _nan_prefix_nb(upper, n - 1)
    _nan_prefix_nb(mid, n - 1)
    _nan_prefix_nb(lower, n - 1)
    if n > size:
        return upper, mid, lower
    inv = 1.0 / n
    ref = 0.0
    s = 0.0
    s2 = 0.0
    since = n
    for i in range(n - 1, size):
        ref, s, s2, since = anchored_sums_step_nb(x, i, n, ref, s, s2, since)
        m = ref + s * inv
        var = (s2 - s * s * inv) * inv
        dev = k * math.sqrt(var) if var > 0 else 0.0
        upper[i] = m + dev
        mid[i] = m
        lower[i] = m - dev
    return upper, mid, lower


@numba.njit(cache=True, nogil=True)
def bb_position_nb(
    x: np.ndarray,
    upper: np.ndarray,
    mid: np.ndarray,
    lower: np.ndarray,
    pct_b: np.ndarray,
    width: np.ndarray,
) -> tuple:
    """%B ``(x - lower) / (upper - lower)`` (0.5 if the bands collapse) and width / middle."""
    for i in range(x.shape[0]):
        span = upper[i] - lower[i]
        pct_b[i] = (x[i] - lower[i]) / span if span > 0 else (0.5 if span == 0 else np.nan)
        width[i] = span / mid[i] if mid[i] != 0 else 0.0
    return pct_b, width


@numba.njit(cache=True, nogil=True)
def obv_nb(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume (TA-Lib convention: starts at ``volume[0]``). Depends on all history."""
    out = np.empty(close.shape[0])
    if close.shape[0] == 0:
        return out
    obv = volume[0]
    out[0] = obv
    for i in range(1, close.shape[0]):
        if close[i] > close[i - 1]:
            obv += volume[i]
        elif close[i] < close[i - 1]:
            obv -= volume[i]
        out[i] = obv
    return out


# --------------------------------------------------------------------------------------------
# Validating wrappers
# --------------------------------------------------------------------------------------------
def _check_period(name: str, value: int, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}; pass e.g. {name}=14")
    return int(value)


def _f64(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


_HUGE_PAGE = 2 << 20  # bytes in an x86-64 transparent huge page


def empty_rows(count: int, n: int) -> np.ndarray:
    """An uninitialised ``(count, n)`` float64 block for kernel outputs.

    First-touch page faults on fresh million-row outputs cost as much as the arithmetic. numpy
    (unlike numba) asks the kernel for transparent huge pages on large allocations, but only the
    2 MB-aligned part of a buffer can use them; so large blocks start on a 2 MB boundary (the
    unused lead-in is virtual memory only), which halves the fault cost of ten 8 MB outputs on
    this project's VMs. Writing into a preallocated block (``out=``) avoids the faults entirely.
    """
    size = count * n
    if size * 8 < 2 * _HUGE_PAGE:
        return np.empty((count, n))
    buf = np.empty(size + _HUGE_PAGE // 8)
    start = (-buf.ctypes.data % _HUGE_PAGE) // 8
    return buf[start : start + size].reshape(count, n)


def _out(x: np.ndarray, count: int, out: Any) -> list[np.ndarray]:
    """Output arrays: the caller's ``out`` (checked), or fresh ones from :func:`empty_rows`."""
    if out is None:
        return list(empty_rows(count, x.shape[0]))
    arrays = [out] if isinstance(out, np.ndarray) and out.ndim == 1 else list(out)
    if len(arrays) != count or any(
        a.shape != x.shape or a.dtype != np.float64 or not a.flags.c_contiguous for a in arrays
    ):
        raise ValueError(f"out= needs {count} contiguous float64 array(s) of shape {x.shape}")
    return arrays


def sma(x: np.ndarray, period: int, out: np.ndarray | None = None) -> np.ndarray:
    """Simple moving average (see :func:`sma_nb`); ``out``: optional output array."""
    x = _f64(x)
    return sma_nb(x, _check_period("period", period), *_out(x, 1, out))


def ema(x: np.ndarray, period: int, out: np.ndarray | None = None) -> np.ndarray:
    """Exponential moving average (see :func:`ema_nb`); ``out``: optional output array."""
    x = _f64(x)
    return ema_nb(x, _check_period("period", period), *_out(x, 1, out))


def rsi(x: np.ndarray, period: int, out: np.ndarray | None = None) -> np.ndarray:
    """Wilder RSI (see :func:`rsi_nb`); ``out``: optional output array."""
    x = _f64(x)
    return rsi_nb(x, _check_period("period", period, 2), *_out(x, 1, out))


def macd(
    x: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9, out: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal and histogram (see :func:`macd_nb`); ``out``: optional 3 arrays."""
    fast, slow = _check_period("fast", fast, 2), _check_period("slow", slow, 2)
    if fast >= slow:
        raise ValueError(f"macd fast={fast} must be shorter than slow={slow}; swap them")
    x = _f64(x)
    return macd_nb(x, fast, slow, _check_period("signal", signal), *_out(x, 3, out))


def atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Average true range (see :func:`atr_nb`); ``out``: optional output array."""
    close = _f64(close)
    return atr_nb(
        _f64(high), _f64(low), close, _check_period("period", period), *_out(close, 1, out)
    )


def bbands(
    x: np.ndarray, period: int = 20, k: float = 2.0, out: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (upper, middle, lower) (see :func:`bbands_nb`); ``out``: optional 3."""
    if k <= 0:
        raise ValueError(f"bbands k={k} must be > 0 standard deviations; pass e.g. k=2.0")
    x = _f64(x)
    return bbands_nb(x, _check_period("period", period, 2), float(k), *_out(x, 3, out))


def bb_position(
    x: np.ndarray, upper: np.ndarray, mid: np.ndarray, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bollinger %B and band width of ``x`` given its bands (see :func:`bb_position_nb`)."""
    x = _f64(x)
    return bb_position_nb(x, upper, mid, lower, *_out(x, 2, None))
