"""Every kernel is causal bit for bit: row t computed on x[:t+1] equals row t computed on all x.

The two-rows-per-step recursions and re-anchored sums make this non-trivial: a series that ends
mid-pair or mid-anchor-block must compute its last row exactly as the longer series does.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptotrade.data import indicators as ind
from cryptotrade.data.volume_profile import vpvr_nb


def _kernels(h, lo, c, v):
    """name -> tuple of output arrays, for the given bars."""
    return {
        "sma": (ind.sma(c, 5),),
        "ema": (ind.ema(c, 4),),
        "rsi": (ind.rsi(c, 3),),
        "macd": ind.macd(c, 3, 7, 3),
        "atr": (ind.atr(h, lo, c, 3),),
        "bbands": ind.bbands(c, 4, 2.0),
        "obv": (ind.obv_nb(c, v),),
        "obv_ratio": (ind.obv_ratio_nb(c, v, 4),),
        "vwap": (ind.vwap_nb(h, lo, c, v, 4),),
        "log_return": (ind.log_return_nb(c, 2),),
        "volatility": (ind.rolling_volatility_nb(c, 4),),
        "vpvr": vpvr_nb(h, lo, c, v, 6, 5, 0.7),
    }


def _bars(seed, n):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    o = np.concatenate([[100.0], c[:-1]])
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    v = rng.lognormal(0, 1, n) * (rng.random(n) > 0.1)  # some zero-volume bars
    return h, lo, c, v


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 90), data=st.data())
def test_truncated_series_gives_bit_identical_rows(seed, n, data):
    h, lo, c, v = _bars(seed, n)
    full = _kernels(h, lo, c, v)
    t = data.draw(st.integers(0, n - 1))
    cut = _kernels(h[: t + 1], lo[: t + 1], c[: t + 1], v[: t + 1])
    for name, outs in full.items():
        for a, b in zip(outs, cut[name], strict=True):
            np.testing.assert_array_equal(a[: t + 1], b, err_msg=name)


@pytest.mark.parametrize("n", [30, 31, 1024, 1025])
def test_future_values_never_reach_the_past(n):
    h, lo, c, v = _bars(1, n)
    base = _kernels(h, lo, c, v)
    h2, lo2, c2, v2 = h.copy(), lo.copy(), c.copy(), v.copy()
    t = n // 2
    c2[t + 1 :] *= 3.0
    h2[t + 1 :] *= 3.0
    lo2[t + 1 :] *= 3.0
    v2[t + 1 :] += 7.0
    moved = _kernels(h2, lo2, c2, v2)
    for name, outs in base.items():
        for a, b in zip(outs, moved[name], strict=True):
            np.testing.assert_array_equal(a[: t + 1], b[: t + 1], err_msg=name)
