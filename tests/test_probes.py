"""Probe markets (cryptotrade/data/probes.py): the planted statistics, the reference rules
against the market model (env replay, independent replay, DP oracle), their edge on edge markets
and its absence on null markets (fixed seeds), and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptotrade.data.market_data import MarketData
from cryptotrade.data.probes import DriftModel, PlantedModel
from cryptotrade.data.synthetic import SyntheticSource
from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward
from cryptotrade.evaluation.backtest import run_backtest
from cryptotrade.evaluation.oracle import solve_oracle
from experiments.learnability.oracle import (
    probe_model,
    reference_result,
    reference_sides,
    rule_sides,
)

DT_15M = 15 * 60 / (365 * 24 * 3600)
SETTINGS = EnvSettings(window=30, funding=False)
EDGE_PROBES = {
    "momentum_lag1": PlantedModel(kind="momentum", lag=1),
    "mean_reversion_lag4": PlantedModel(kind="mean_reversion", lag=4),
    "regime_gate": PlantedModel(gate="regime"),
    "volume_gate": PlantedModel(gate="volume"),
    "volatility_gate": PlantedModel(gate="volatility"),
}
NULL_PROBES = {"random_walk": DriftModel(), "gbm": DriftModel(drift=1.0, volatility=0.25)}


def probe_data(model, n: int, seed: int = 0, timeframe: str = "15m") -> MarketData:
    """A probe market as one split (no features: the rules and the env read prices)."""
    bars = SyntheticSource(num_samples=n, timeframe=timeframe, regime=model, seed=seed).load()
    return MarketData(
        name="test",
        timestamps=bars.index.tz_localize(None).to_numpy(dtype="datetime64[ns]"),
        open=bars["open"].to_numpy(),
        high=bars["high"].to_numpy(),
        low=bars["low"].to_numpy(),
        close=bars["close"].to_numpy(),
        volume=bars["volume"].to_numpy(),
        features=np.zeros((n, 1), np.float32),
        feature_names=("x",),
        funding_rate=np.zeros(n),
        regime=bars["regime"].to_numpy(np.int8),
    )


def log_returns(data: MarketData) -> np.ndarray:
    return np.diff(np.log(data.close))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def slope(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.cov(x, y)[0, 1] / x.var(ddof=1))


@pytest.fixture(scope="module")
def markets() -> dict[str, MarketData]:
    """20,000 15m bars of every probe, seed 3 (generation is a numba kernel: milliseconds)."""
    return {
        name: probe_data(m, 20_000, seed=3) for name, m in {**EDGE_PROBES, **NULL_PROBES}.items()
    }


@pytest.mark.parametrize(("kind", "lag"), [("momentum", 1), ("momentum", 3), ("mean_reversion", 5)])
def test_planted_edge_has_its_lag_sign_and_volatility(kind, lag):
    model = PlantedModel(kind=kind, lag=lag, strength=0.3, volatility=1.0)
    r = log_returns(probe_data(model, 20_000, seed=1))
    for j in range(1, 2 * lag + 2):  # an AR process at lag k only: phi^(j/k) at multiples of k
        expected = model.phi ** (j // lag) if j % lag == 0 else 0.0
        assert corr(r[j:], r[:-j]) == pytest.approx(expected, abs=0.03), j
    assert r.std() == pytest.approx(math.sqrt(DT_15M), rel=0.03)


def test_gated_edges_are_on_in_edge_state_bars_only(markets):
    for name in ("regime_gate", "volume_gate", "volatility_gate"):
        data = markets[name]
        r, state = log_returns(data), data.regime[1:]
        on = state[:-1] == 1  # the predicting bar's state
        # the regression slope of r[t + 1] on r[t] is phi: E[r[t + 1] | r[t]] = phi r[t]
        assert slope(r[1:][on], r[:-1][on]) == pytest.approx(0.3, abs=0.05), name
        assert slope(r[1:][~on], r[:-1][~on]) == pytest.approx(0.0, abs=0.05), name
    vol = markets["volume_gate"]
    heavy = np.median(vol.volume[vol.regime == 1]) / np.median(vol.volume[vol.regime == 0])
    assert heavy == pytest.approx(2.0, rel=0.1)  # contrast 2: edge bars trade twice the volume
    assert np.mean(vol.regime) == pytest.approx(0.5, abs=0.02)  # edge_share, bar by bar
    v = markets["volatility_gate"]
    r = log_returns(v)
    assert r[v.regime[1:] == 1].std() / r[v.regime[1:] == 0].std() == pytest.approx(2.0, rel=0.1)


def test_regime_gate_spells_last_their_durations():
    model = PlantedModel(gate="regime", min_duration=50, max_duration=120)
    path = model.simulate(10_000, DT_15M, seed=2)
    lengths = path.spell_lengths  # runs of one state: one or more spells, the last cut short
    assert set(path.spell_regimes) == {0, 1} and lengths.sum() == 10_000
    assert lengths[:-1].min() >= 50 and len(lengths) > 10_000 / 120 / 4
    assert np.mean(path.regime) == pytest.approx(0.5, abs=0.15)  # edge_share of ~120 spells
    assert model.names == ("null", "edge") and PlantedModel().names == ("edge",)


def test_null_markets_have_no_autocorrelation_and_their_drift(markets):
    for name, model in NULL_PROBES.items():
        r = log_returns(markets[name])
        for lag in (1, 2, 5):
            assert abs(corr(r[lag:], r[:-lag])) < 0.03, (name, lag)
        se = r.std() / math.sqrt(len(r))
        assert abs(r.mean() - model.drift * DT_15M) < 4 * se, name
        assert r.std() == pytest.approx(model.volatility * math.sqrt(DT_15M), rel=0.03)


def test_same_seed_same_market():
    model = PlantedModel(gate="volume", lag=2)
    a, b = (SyntheticSource(num_samples=2000, regime=model, seed=5).load() for _ in range(2))
    c = SyntheticSource(num_samples=2000, regime=model, seed=6).load()
    assert a.equals(b) and not np.allclose(a["close"], c["close"])
    o, h, lo, cl = (a[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo <= np.minimum(o, cl)).all() and (np.maximum(o, cl) <= h).all()
    np.testing.assert_array_equal(o[1:], cl[:-1])  # an order at t fills at close[t]: edge intact


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "trend"}, "regime.kind='trend' must be one of momentum, mean_reversion"),
        ({"gate": "news"}, "regime.gate='news' must be one of none, regime, volume"),
        ({"strength": 1.0}, "regime.strength=1.0 must lie in (0, 1)"),
        ({"lag": 0}, "regime.lag=0 must be >= 1"),
        ({"contrast": 0.0}, "regime.contrast=0.0 must be > 0"),
        ({"edge_share": 1.0}, "regime.edge_share=1.0 must lie in (0, 1)"),
        ({"min_duration": 10, "max_duration": 5}, "regime.min_duration=10 and max_duration=5"),
        ({"volatility": -1.0}, "regime.volatility=-1.0 must be > 0"),
    ],
)
def test_planted_knobs_are_checked_with_one_line_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        PlantedModel(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_drift_knobs_are_checked():
    with pytest.raises(ValueError, match=r"regime.volatility=0.0 and regime.volume_factor=1.0"):
        DriftModel(volatility=0.0)
    with pytest.raises(ValueError, match=r"num_samples=3 must exceed regime\.lag=5"):
        PlantedModel(lag=5).simulate(3, DT_15M, seed=0)


def test_reference_rules_by_hand():
    """sign(E[r[t+1] | bars <= t]), kept where it is 0, on hand-made closes (bar returns +, -,
    +, +, -)."""
    close = 100.0 * np.exp(np.cumsum([0.0, 0.01, -0.02, 0.01, 0.03, -0.01]))
    labels = np.array([0, 0, 1, 0, 1, 0])
    momentum = PlantedModel(kind="momentum", lag=1)
    np.testing.assert_array_equal(
        momentum.reference_sides(close, None, 1, 5, DT_15M), [1, -1, 1, 1]
    )
    reverting = PlantedModel(kind="mean_reversion", lag=2)
    # decision at t reads r[t - 1]: r[1] = +, r[2] = -, r[3] = +
    np.testing.assert_array_equal(reverting.reference_sides(close, None, 2, 5, DT_15M), [-1, 1, -1])
    gated = PlantedModel(gate="volume", lag=1)
    # bars 2 and 4 are edge bars: flat until the first, then re-decide after each, keep after 3
    np.testing.assert_array_equal(
        gated.reference_sides(close, labels, 1, 5, DT_15M), [0, -1, -1, 1]
    )
    drifting = PlantedModel(gate="volume", lag=1, drift=10_000.0)  # the drift outweighs any move
    np.testing.assert_array_equal(drifting.reference_sides(close, labels, 1, 5, 1.0), [1, 1, 1, 1])
    assert list(DriftModel().reference_sides(close, None, 1, 5, DT_15M)) == [0, 0, 0, 0]
    assert list(DriftModel(drift=0.5).reference_sides(close, None, 1, 5, DT_15M)) == [1, 1, 1, 1]
    with pytest.raises(ValueError, match=r"first decision bar 1 must be >= regime\.lag=2"):
        reverting.reference_sides(close, None, 1, 5, DT_15M)


@pytest.mark.parametrize("name", [*EDGE_PROBES, *NULL_PROBES])
def test_rule_reads_no_bar_after_its_decision(markets, name):
    """Rewriting every bar after t (prices and states) leaves the decisions up to t unchanged."""
    model = {**EDGE_PROBES, **NULL_PROBES}[name]
    data = markets[name]
    close, labels = data.close[:3000].copy(), data.regime[:3000].copy()
    start, end = 29, 2999
    sides = model.reference_sides(close, labels, start, end, DT_15M)
    rng = np.random.default_rng(0)
    for t in (start, 1000, 2500):
        c, lab = close.copy(), labels.copy()
        c[t + 1 :] *= np.exp(rng.normal(0, 0.05, len(c) - t - 1))
        lab[t + 1 :] = rng.integers(0, len(model.names), len(lab) - t - 1)
        again = model.reference_sides(c, lab, start, end, DT_15M)
        np.testing.assert_array_equal(again[: t - start + 1], sides[: t - start + 1])


def test_rules_have_an_edge_on_edge_markets_and_none_on_null_markets(markets):
    """Gross per-bar log return of a rule's side times the next bar's return (t statistics over
    ~20,000 bars, market seed 3)."""

    def t_stat(sides: np.ndarray, data: MarketData) -> float:
        pnl = sides * log_returns(data)[29 : 29 + len(sides)]  # r[t + 1] for decision bar t
        return float(pnl.mean() / (pnl.std() / math.sqrt(len(pnl))))

    for name, model in EDGE_PROBES.items():
        data = markets[name]
        assert t_stat(reference_sides(model, data, SETTINGS), data) > 8, name
        assert reference_result(model, data, SETTINGS).log_return > 0.5, name  # after costs
    for name in NULL_PROBES:
        data = markets[name]
        for lag in (1, 4):  # the edge rules find nothing here
            sides = np.sign(log_returns(data)[29 - lag : len(data) - 1 - lag])  # r[t + 1 - lag]
            assert abs(t_stat(sides, data)) < 3, (name, lag)
            assert abs(t_stat(-sides, data)) < 3, (name, lag)
    flat = reference_result(NULL_PROBES["random_walk"], markets["random_walk"], SETTINGS)
    assert flat.log_return == 0.0 and flat.num_trades == 0  # flat: no trade, no cost
    hold = reference_result(NULL_PROBES["gbm"], markets["gbm"], SETTINGS)
    assert hold.num_trades == 1 and hold.log_return > 0.5  # one long held: the drift


def sides_policy(sides: np.ndarray):
    """Play decided sides through the env (discrete3: 0 short, 1 flat, 2 long)."""
    step = [0]

    def act(obs, env) -> int:
        side = sides[min(step[0], len(sides) - 1)]
        step[0] += 1
        return int(side) + 1

    return act


@pytest.mark.parametrize("name", ["mean_reversion_lag4", "regime_gate", "volume_gate", "gbm"])
def test_rule_through_the_env_equals_the_independent_replay_and_the_oracle_bounds_it(name):
    """The env (numba kernels) and the plain-Python replay agree on the rule's equity to
    rounding; the DP oracle through the same env is at least the rule (one feasible policy)."""
    model = {**EDGE_PROBES, **NULL_PROBES}[name]
    data = probe_data(model, 400, seed=4, timeframe="1h")
    settings = EnvSettings(window=30, funding=False, taker_fee=0.0005, slippage_bps=2.0)
    env = TradingEnv(data, WeightedReward(), settings, evaluation=True)
    sides = reference_sides(model, data, settings)
    through_env = run_backtest(sides_policy(sides), env, seed=0)
    replay = reference_result(model, data, settings)
    np.testing.assert_allclose(replay.equity, through_env.equity, rtol=1e-12)
    assert replay.num_trades == len(through_env.trades)
    assert replay.fees == pytest.approx(float(through_env.trades["fees"].sum()), rel=1e-9)
    oracle = solve_oracle(env)  # no hold limit: its relaxed DP bounds every policy from above
    assert oracle.upper_bound >= oracle.value >= replay.equity[-1]


def test_probe_model_is_found_on_probe_sources_only():
    assert isinstance(probe_model(SyntheticSource(regime=PlantedModel())), PlantedModel)
    assert probe_model(SyntheticSource()) is None  # the regime market has no exact rule
    assert probe_model(object()) is None  # a file source


def test_sign_rule_of_the_study_is_the_momentum_probe_rule(markets):
    """The learnability study's sign rule (oracle.rule_sides) is the lag-1 momentum probe's."""
    data = markets["momentum_lag1"]
    ours = reference_sides(EDGE_PROBES["momentum_lag1"], data, SETTINGS)
    np.testing.assert_array_equal(ours, rule_sides(data.close, 29, len(data) - 1))


def test_a_bad_knob_fails_the_build_with_its_one_line_message():
    """``components.build`` hands the constructor's ConfigError to the launcher (one line)."""
    from cryptotrade.components import build
    from cryptotrade.errors import ConfigError
    from experiments.learnability.harness import compose_config

    cfg = compose_config(["data=probe", "regime=planted", "regime.kind=trend"])
    with pytest.raises(ConfigError, match=r"^regime\.kind='trend' must be one of momentum"):
        build(cfg, agent=False)
