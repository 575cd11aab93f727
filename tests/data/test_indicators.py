"""Indicator kernels: hand-computed oracles on tiny arrays, and agreement with TA-Lib."""

import numpy as np
import pandas as pd
import pytest

from cryptotrade.data import indicators as ind
from cryptotrade.data.volume_profile import vpvr_nb

X = np.array([1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 5.0])


def test_sma_oracle():
    np.testing.assert_allclose(ind.sma(X, 3), [np.nan, np.nan, 2, 7 / 3, 3, 4, 5])


def test_ema_oracle_seeded_with_sma():
    k = 0.5  # period 3
    e2 = 2.0
    e3 = (2.0 - e2) * k + e2
    e4 = (4.0 - e3) * k + e3
    expected = [
        np.nan,
        np.nan,
        e2,
        e3,
        e4,
        (6 - e4) * k + e4,
        (5 - ((6 - e4) * k + e4)) * k + (6 - e4) * k + e4,
    ]
    np.testing.assert_allclose(ind.ema(X, 3), expected)


def test_rsi_oracle_wilder():
    # changes: +1 +1 -1 +2 +2 -1 ; period 3 -> first at index 3: gains 2/3, losses 1/3
    g, lo = 2 / 3, 1 / 3
    out = [np.nan] * 3 + [100 * g / (g + lo)]
    g, lo = (g * 2 + 2) / 3, lo * 2 / 3
    out.append(100 * g / (g + lo))
    g, lo = (g * 2 + 2) / 3, lo * 2 / 3
    out.append(100 * g / (g + lo))
    g, lo = g * 2 / 3, (lo * 2 + 1) / 3
    out.append(100 * g / (g + lo))
    np.testing.assert_allclose(ind.rsi(X, 3), out)
    assert ind.rsi(np.ones(10), 3)[3] == 0.0  # flat window: TA-Lib's 0


def test_atr_oracle():
    high = np.array([10.0, 12.0, 11.0, 15.0])
    low = np.array([9.0, 10.0, 9.0, 12.0])
    close = np.array([9.5, 11.0, 10.0, 14.0])
    # true ranges from bar 1: max(2, 2.5, 0.5)=2.5, max(2, 0, 2)=2, max(3, 5, 2)=5
    out = ind.atr(high, low, close, 2)
    np.testing.assert_allclose(out, [np.nan, np.nan, 2.25, (2.25 + 5) / 2])


def test_bbands_oracle_population_std():
    up, mid, low = ind.bbands(X, 3, 2.0)
    pct_b, width = ind.bb_position(X, up, mid, low)
    sd = np.std(X[2:5])
    assert mid[4] == pytest.approx(3.0)
    assert up[4] == pytest.approx(3 + 2 * sd) and low[4] == pytest.approx(3 - 2 * sd)
    assert pct_b[4] == pytest.approx((4 - low[4]) / (up[4] - low[4]))
    assert width[4] == pytest.approx(4 * sd / 3)
    flat_b, flat_w = ind.bb_position(np.ones(5), *ind.bbands(np.ones(5), 3, 2.0))
    assert flat_b[4] == 0.5 and flat_w[4] == 0.0


def test_macd_oracle_against_pandas_with_talib_seeding():
    x = np.linspace(1, 50, 60) + np.sin(np.arange(60))
    line, sig, hist = ind.macd(x, 3, 6, 4)
    k_f, k_s = 2 / 4, 2 / 7
    fast, slow = x[3:6].mean(), x[0:6].mean()  # both seeded at slow - 1 = 5
    raw = [fast - slow]
    for v in x[6:]:
        fast = (v - fast) * k_f + fast
        slow = (v - slow) * k_s + slow
        raw.append(fast - slow)
    raw = np.array(raw)  # starts at index 5
    first = 6 + 4 - 2
    assert np.isnan(line[:first]).all() and not np.isnan(line[first:]).any()
    np.testing.assert_allclose(line[first:], raw[first - 5 :])
    s = raw[:4].mean()
    sigs = [s]
    for v in raw[4:]:
        s = (v - s) * 0.4 + s
        sigs.append(s)
    np.testing.assert_allclose(sig[first:], sigs)
    np.testing.assert_allclose(hist[first:], line[first:] - sig[first:])


def test_obv_vwap_returns_volatility_oracles():
    c = np.array([10.0, 11.0, 11.0, 9.0])
    v = np.array([5.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(ind.obv_nb(c, v), [5, 7, 7, 3])
    np.testing.assert_allclose(ind.obv_ratio_nb(c, v, 2), [np.nan, np.nan, 2 / 5, -4 / 7])
    h, lo = c + 1, c - 1
    np.testing.assert_allclose(ind.vwap_nb(h, lo, c, v, 2)[1:], [(50 + 22) / 7, 11, (33 + 36) / 7])
    np.testing.assert_allclose(ind.vwap_nb(h, lo, c, np.zeros(4), 2)[1:], c[1:])
    np.testing.assert_allclose(
        ind.log_return_nb(c, 2), [np.nan, np.nan, np.log(1.1), np.log(9 / 11)]
    )
    r = np.diff(np.log(c))
    vol = ind.rolling_volatility_nb(c, 2)
    np.testing.assert_allclose(vol[2:], [np.std(r[:2], ddof=1), np.std(r[1:3], ddof=1)])
    assert np.isnan(vol[:2]).all()


def test_rolling_std_matches_numpy_on_long_series_without_drift():
    rng = np.random.default_rng(0)
    x = 30000 * np.exp(np.cumsum(rng.normal(0, 0.01, 200_000)))
    out = ind.rolling_std_nb(x, 20, 0)
    for i in rng.integers(19, len(x), 300):
        assert out[i] == pytest.approx(np.std(x[i - 19 : i + 1]), rel=1e-9, abs=1e-9)


def test_vpvr_oracle():
    high = np.array([10.0, 12.0, 11.0])
    low = np.array([8.0, 10.0, 9.0])
    close = np.array([9.0, 11.0, 10.0])
    vol = np.array([1.0, 4.0, 1.0])
    poc, vah, val = vpvr_nb(high, low, close, vol, 3, 4, 0.7)
    # range 8..12 in 4 bins of 1: bar0 -> [0.5, 0.5, 0, 0], bar1 -> [0, 0, 2, 2],
    # bar2 -> [0, 0.5, 0.5, 0]: hist [0.5, 1, 2.5, 2]; POC bin 2 (10..11);
    # value area 70 % of 6 = 4.2: 2.5 + 2 (above) = 4.5 -> bins 2..3
    assert np.isnan(poc[:2]).all()
    assert poc[2] == pytest.approx(10.5)
    assert vah[2] == pytest.approx(12.0) and val[2] == pytest.approx(10.0)
    flat = vpvr_nb(np.ones(3), np.ones(3), np.ones(3), np.ones(3), 2, 4, 0.7)
    assert flat[0][2] == 1.0 and flat[1][2] == 1.0


def test_wrappers_validate_arguments():
    with pytest.raises(ValueError, match="period"):
        ind.sma(X, 0)
    with pytest.raises(ValueError, match="fast"):
        ind.macd(X, 26, 12, 9)
    with pytest.raises(ValueError, match="k="):
        ind.bbands(X, 3, -1.0)


def test_short_input_gives_all_nan():
    assert np.isnan(ind.sma(X[:2], 3)).all()
    assert np.isnan(ind.rsi(X[:3], 3)).all()
    assert all(np.isnan(a).all() for a in ind.macd(X, 3, 6, 4))


# ------------------------------------------------------------------------------- TA-Lib
talib = pytest.importorskip("talib", reason="TA-Lib (dev extra) is the reference implementation")


@pytest.fixture(scope="module")
def ohlcv():
    rng = np.random.default_rng(42)
    n = 20_000
    c = 30000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    h = c * np.exp(np.abs(rng.normal(0, 0.002, n)))
    lo = c * np.exp(-np.abs(rng.normal(0, 0.002, n)))
    v = rng.lognormal(3, 1, n)
    return h, lo, c, v


def _agree(ours, ref):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("period", [2, 14, 20, 50])
def test_talib_sma_ema_rsi_atr(ohlcv, period):
    h, lo, c, _ = ohlcv
    _agree(ind.sma(c, period), talib.SMA(c, period))
    _agree(ind.ema(c, period), talib.EMA(c, period))
    _agree(ind.rsi(c, period), talib.RSI(c, period))
    _agree(ind.atr(h, lo, c, period), talib.ATR(h, lo, c, period))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (2, 3, 1)])
def test_talib_macd(ohlcv, fast, slow, signal):
    c = ohlcv[2]
    for ours, ref in zip(
        ind.macd(c, fast, slow, signal), talib.MACD(c, fast, slow, signal), strict=True
    ):
        _agree(ours, ref)


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (10, 1.5), (50, 3.0)])
def test_talib_bbands(ohlcv, period, k):
    c = ohlcv[2]
    up, mid, low = ind.bbands(c, period, k)
    for ours, ref in zip((up, mid, low), talib.BBANDS(c, period, k, k), strict=True):
        _agree(ours, ref)


def test_talib_obv_and_pandas_volatility(ohlcv):
    _, _, c, v = ohlcv
    _agree(ind.obv_nb(c, v), talib.OBV(c, v))
    ref = pd.Series(np.log(c)).diff().rolling(20).std().to_numpy()
    np.testing.assert_allclose(ind.rolling_volatility_nb(c, 20), ref, rtol=1e-7, atol=1e-12)


def test_out_arrays_are_filled_and_checked():
    block = np.empty((4, len(X)))
    got = ind.macd(np.linspace(1, 9, len(X)), 2, 3, 2, out=block[:3])
    assert all(np.shares_memory(g, b) for g, b in zip(got, block[:3], strict=True))
    np.testing.assert_array_equal(got[0], ind.macd(np.linspace(1, 9, len(X)), 2, 3, 2)[0])
    assert np.shares_memory(ind.sma(X, 3, out=block[3]), block[3])
    with pytest.raises(ValueError, match="out="):
        ind.sma(X, 3, out=np.empty(3))
    with pytest.raises(ValueError, match="out="):
        ind.bbands(X, 3, 2.0, out=block[:2])


def test_large_outputs_start_on_a_huge_page_and_small_ones_are_plain():
    big = ind.empty_rows(3, 1_000_000)
    assert big.shape == (3, 1_000_000) and big.flags.c_contiguous
    assert big.ctypes.data % (2 << 20) == 0
    assert all(row.flags.c_contiguous for row in big)
    assert ind.empty_rows(2, 10).shape == (2, 10)


def test_vpvr_window_without_volume_after_volume_uses_the_close():
    # a running volume sum left 0.1 + 0.2 + 0.3 + 0.7 - ... a hair above zero once those bars
    # left the window, so all-zero-volume windows (flat filled gaps) got a bogus profile at the
    # bottom of the range instead of the close, and a different value than the same window
    # computed from a shorter history
    close = np.linspace(100.0, 101.0, 12)
    high, low = close + 0.5, close - 0.5
    vol = np.array([0.1, 0.2, 0.3, 0.7] + [0.0] * 8)
    poc, vah, val = vpvr_nb(high, low, close, vol, 3, 4, 0.7)
    np.testing.assert_array_equal(poc[6:], close[6:])
    np.testing.assert_array_equal(vah[6:], close[6:])
    np.testing.assert_array_equal(val[6:], close[6:])
    short = vpvr_nb(high[6:], low[6:], close[6:], vol[6:], 3, 4, 0.7)
    np.testing.assert_array_equal(short[0][2:], poc[8:])
