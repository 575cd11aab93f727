"""Statistical tests of the regime generator: the market it draws is the one configured.

Tolerances are in standard errors of the estimator (drift: sigma / sqrt(years); volatility:
1 / sqrt(2 n); transition frequencies: binomial), so the tests are tight where the sample allows
and never flaky by luck of one seed (each uses a fixed seed).
"""

import numpy as np
import pytest

from cryptotrade.data.synthetic import RegimeModel, SyntheticSource

HOURLY = 1 / (365 * 24)


def _regime(drift, vol, theta, lo, hi, factor=1.0):
    return {
        "drift": drift,
        "volatility": vol,
        "mean_reversion": theta,
        "volume_factor": factor,
        "min_duration": lo,
        "max_duration": hi,
    }


@pytest.fixture(scope="module")
def default_path():
    return RegimeModel().simulate(1_000_000, HOURLY, seed=1)


def _per_regime_returns(path, k):
    sel = path.regime == k
    return np.log(path.close[sel] / path.open[sel])


def test_realised_drift_and_volatility_match_default_config(default_path):
    model = RegimeModel()
    for k, name in enumerate(model.names):
        mu, sigma = model.params[name]["drift"], model.params[name]["volatility"]
        r = _per_regime_returns(default_path, k)
        n = len(r)
        assert n > 20_000, f"regime {name} too rare to test ({n} bars)"
        est_sigma = r.std() / np.sqrt(HOURLY)
        assert est_sigma == pytest.approx(sigma, rel=max(5 / np.sqrt(2 * n), 0.01)), name
        # log returns drift at mu - sigma^2 / 2
        est_mu = r.mean() / HOURLY + sigma**2 / 2
        se = sigma / np.sqrt(n * HOURLY)
        assert abs(est_mu - mu) < 4 * se, f"{name}: drift {est_mu:.3f} vs {mu} (se {se:.3f})"


def test_strong_drift_uses_the_ito_correction():
    # sigma^2 / 2 = 1.125 a year: a generator that forgot it would be off by > 6 standard errors
    model = RegimeModel(
        regimes={
            "up": _regime(2.0, 1.5, 0.0, 500, 1500),
            "down": _regime(-2.0, 1.5, 0.0, 500, 1500),
        },
        transitions={"up": {"down": 1.0}, "down": {"up": 1.0}},
        initial="up",
    )
    path = model.simulate(1_500_000, HOURLY, seed=2)
    for k, mu in enumerate((2.0, -2.0)):
        r = _per_regime_returns(path, k)
        se = 1.5 / np.sqrt(len(r) * HOURLY)
        est = r.mean() / HOURLY + 1.5**2 / 2
        assert abs(est - mu) < 4 * se and se < 0.2


def test_high_low_range_reflects_regime_volatility(default_path):
    # Parkinson (1980): E[ln(H/L)^2] = 4 ln 2 sigma^2 dt for Brownian motion. High and low are
    # drawn from the exact bridge marginals (not jointly), which overstates it by ~1.5 %.
    model = RegimeModel()
    hl = np.log(default_path.high / default_path.low)
    for k, name in enumerate(model.names):
        sel = default_path.regime == k
        park = np.sqrt((hl[sel] ** 2).mean() / (4 * np.log(2)) / HOURLY)
        assert park == pytest.approx(model.params[name]["volatility"], rel=0.03), name


def test_ohlc_consistent_for_every_bar(default_path):
    p = default_path
    assert (p.low <= np.minimum(p.open, p.close)).all()
    assert (np.maximum(p.open, p.close) <= p.high).all()
    assert (p.low > 0).all() and np.isfinite(p.high).all()


def test_volume_follows_volume_factor(default_path):
    model = RegimeModel()
    means = [default_path.volume[default_path.regime == k].mean() for k in range(5)]
    factors = [model.params[n]["volume_factor"] for n in model.names]
    for m, f in zip(means, factors, strict=True):
        assert m / 1000.0 == pytest.approx(f, rel=0.03)


def test_mean_reversion_shrinks_long_horizon_variance():
    # variance ratio Var(k-bar move) / (k Var(1-bar move)): 1 for GBM, < 1 under an OU pull
    regimes = {
        "range": _regime(0.0, 0.5, 40.0, 3000, 5000),
        "trend": _regime(0.0, 0.5, 0.0, 3000, 5000),
    }
    trans = {"range": {"trend": 1.0}, "trend": {"range": 1.0}}
    k = 168  # one week of hourly bars; theta k dt = 0.77

    def ratio(process, regime):
        path = RegimeModel(regimes, trans, process=process, initial="range").simulate(
            600_000, HOURLY, seed=3
        )
        r = np.log(path.close / path.open)
        sums, ones = [], []
        start = 0
        for reg, length in zip(path.spell_regimes, path.spell_lengths, strict=True):
            seg = r[start : start + length]
            start += length
            if reg != regime:
                continue
            usable = len(seg) // k * k
            sums.append(seg[:usable].reshape(-1, k).sum(1))
            ones.append(seg)
        return np.concatenate(sums).var() / (k * np.concatenate(ones).var())

    assert ratio("ou", 0) < 0.8
    assert ratio("ou", 1) == pytest.approx(1.0, abs=0.12)
    assert ratio("gbm", 0) == pytest.approx(1.0, abs=0.12)  # gbm ignores mean_reversion


def test_transition_frequencies_match_matrix():
    model = RegimeModel()
    short = {n: dict(p, min_duration=1, max_duration=3) for n, p in model.params.items()}
    fast = RegimeModel(
        regimes=short,
        transitions={
            src: {dst: model.matrix[i, j] for j, dst in enumerate(model.names)}
            for i, src in enumerate(model.names)
        },
    )
    path = fast.simulate(400_000, HOURLY, seed=4)
    spells = path.spell_regimes
    counts = np.zeros((5, 5))
    np.add.at(counts, (spells[:-1], spells[1:]), 1)
    for i in range(5):
        n = counts[i].sum()
        assert n > 5000
        freq = counts[i] / n
        se = np.sqrt(model.matrix[i] * (1 - model.matrix[i]) / n)
        assert (np.abs(freq - model.matrix[i]) <= 4 * se + 1e-12).all(), (i, freq)
    # impossible transitions never happen (contraction -> downtrend is 0.15, uptrend -> uptrend 0)
    assert counts[np.diag_indices(5)].sum() == 0


def test_spells_durations_and_labels_agree():
    model = RegimeModel()
    path = model.simulate(300_000, HOURLY, seed=5)
    np.testing.assert_array_equal(
        np.repeat(path.spell_regimes, path.spell_lengths)[:300_000], path.regime
    )
    for k, name in enumerate(model.names):
        lo, hi = model.params[name]["min_duration"], model.params[name]["max_duration"]
        lengths = path.spell_lengths[:-1][path.spell_regimes[:-1] == k]
        assert lengths.min() >= lo and lengths.max() <= hi
        # uniform on [lo, hi]: mean within 4 standard errors of the midpoint
        se = (hi - lo + 1) / np.sqrt(12 * len(lengths))
        assert abs(lengths.mean() - (lo + hi) / 2) < 4 * se


def test_ten_years_of_15m_bars_has_every_regime_and_finite_prices():
    bars = SyntheticSource(num_samples=350_400, timeframe="15m", seed=0, funding=True).load()
    assert len(bars) == 350_400
    assert bars.index[-1] - bars.index[0] == np.timedelta64(350_399 * 15, "m")
    assert set(np.unique(bars["regime"])) == {0, 1, 2, 3, 4}
    assert np.isfinite(bars[["open", "high", "low", "close"]].to_numpy()).all()
    assert (bars["close"] > 0).all()
