"""Regime-switching synthetic markets.

A :class:`RegimeModel` is a semi-Markov chain over named market regimes (uptrend, downtrend,
ranging, volatility expansion, volatility contraction ...). Each regime has an annualised drift
and volatility, a mean-reversion strength, a volume factor and a duration range in bars. When a
regime's duration runs out, the next regime is drawn from the transition matrix row of the
current one (e.g. contraction tends to lead to expansion).

Within a regime the log price follows (``dt`` in years, ``sigma`` annualised)::

    x[t+1] = x[t] + (mu - sigma^2 / 2) dt + theta (a[t] - x[t]) dt + sigma sqrt(dt) z[t]
    a[t+1] = a[t] + (mu - sigma^2 / 2) dt

i.e. geometric Brownian motion when ``theta = 0`` (or ``process="gbm"``) and an
Ornstein-Uhlenbeck pull towards an anchor ``a`` (the log price at regime entry, drifting with the
regime) otherwise. Bars are open-to-close steps of that path: ``open`` is the previous close
(crypto trades around the clock), ``high``/``low`` are drawn from the exact distribution of the
maximum/minimum of a Brownian bridge between open and close with the regime's volatility, so
``low <= min(open, close) <= max(open, close) <= high`` always holds. Volume scales with the
regime's volume factor and with the size of the bar's move.

:class:`SyntheticSource` turns that into a bars frame (with the ``regime`` label per bar and,
optionally, a synthetic perpetual ``funding_rate``); it is the ``source`` of
``conf/data/synthetic.yaml`` and receives the model from the ``regime`` config group.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numba
import numpy as np
import pandas as pd
import yaml

from cryptotrade.data.sources.funding import align_funding
from cryptotrade.timeframes import SECONDS_PER_YEAR, timeframe_seconds

REGIME_FIELDS = (
    "drift",
    "volatility",
    "mean_reversion",
    "volume_factor",
    "min_duration",
    "max_duration",
)

# conf/regime/default.yaml is the one source of the default regimes and transitions:
# RegimeModel() without them reads that preset (so ``gym.make`` and tests trade the same market
# as ``regime=default``).
DEFAULT_PRESET = Path(__file__).resolve().parents[2] / "conf" / "regime" / "default.yaml"


@functools.cache
def _default_preset() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PRESET.read_text())


def default_regimes() -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``(regimes, transitions)`` of ``conf/regime/default.yaml`` (fresh copies)."""
    preset = _default_preset()
    return copy.deepcopy(preset["regimes"]), copy.deepcopy(preset["transitions"])


@dataclass(frozen=True)
class SyntheticPath:
    """Arrays of one simulated market (prices are levels, not logs).

    Attributes:
        open, high, low, close, volume: Bar arrays, float64 ``(T,)``.
        regime: Regime index per bar (into :attr:`RegimeModel.names`), int8 ``(T,)``.
        spell_regimes: Regime index of each consecutive spell, in order.
        spell_lengths: Drawn duration of each spell in bars (the last one may be cut short).
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regime: np.ndarray
    spell_regimes: np.ndarray
    spell_lengths: np.ndarray


@numba.njit(cache=True, nogil=True)
def sample_spells_nb(
    n: int,
    cum_trans: np.ndarray,
    min_dur: np.ndarray,
    max_dur: np.ndarray,
    first: int,
    u_next: np.ndarray,
    u_dur: np.ndarray,
) -> tuple:
    """Draw regime spells until they cover ``n`` bars: per-bar labels plus the spell list."""
    labels = np.empty(n, dtype=np.int8)
    spell_reg = np.empty(n, dtype=np.int64)
    spell_len = np.empty(n, dtype=np.int64)
    k = 0
    pos = 0
    cur = first
    while pos < n:
        span = max_dur[cur] - min_dur[cur] + 1
        dur = min_dur[cur] + min(int(u_dur[k] * span), span - 1)
        spell_reg[k] = cur
        spell_len[k] = dur
        end = min(pos + dur, n)
        labels[pos:end] = cur
        pos = end
        # inverse-CDF draw from the transition row; the last column catches rounding
        nxt = cum_trans.shape[1] - 1
        for j in range(cum_trans.shape[1]):
            if u_next[k] < cum_trans[cur, j]:
                nxt = j
                break
        cur = nxt
        k += 1
    return labels, spell_reg[:k], spell_len[:k]


@numba.njit(cache=True, inline="always")
def bridge_bar_nb(
    x: float, b: float, s: float, u_high: float, u_low: float
) -> tuple[float, float, float, float]:
    """Open, high, low, close of one bar whose log price moves from ``x`` by ``b``: the high and
    low are the max / min of a Brownian bridge from 0 to ``b`` with variance ``s**2`` (exact
    inverse CDF of uniforms ``u_high``, ``u_low``)."""
    up = 0.5 * (b + math.sqrt(b * b - 2.0 * s * s * math.log(u_high)))
    down = 0.5 * (b - math.sqrt(b * b - 2.0 * s * s * math.log(u_low)))
    o = math.exp(x)
    c = math.exp(x + b)
    # rounding of exp() can put open/close a hair outside the bridge extremes
    return o, max(math.exp(x + up), o, c), min(math.exp(x + down), o, c), c


@numba.njit(cache=True, nogil=True)
def simulate_path_nb(
    labels: np.ndarray,
    drift: np.ndarray,
    vol: np.ndarray,
    theta: np.ndarray,
    vol_factor: np.ndarray,
    dt: float,
    log_p0: float,
    base_volume: float,
    volume_noise: float,
    z: np.ndarray,
    u_high: np.ndarray,
    u_low: np.ndarray,
    z_vol: np.ndarray,
) -> tuple:
    """Simulate log prices along the regime labels and build OHLCV from each step."""
    n = labels.shape[0]
    o = np.empty(n)
    h = np.empty(n)
    lo = np.empty(n)
    c = np.empty(n)
    v = np.empty(n)
    x = log_p0
    anchor = log_p0
    prev = -1
    sqdt = math.sqrt(dt)
    for t in range(n):
        r = labels[t]
        if r != prev:
            anchor = x  # a new regime mean-reverts around where it started
            prev = r
        s = vol[r] * sqdt
        step = (drift[r] - 0.5 * vol[r] * vol[r]) * dt
        b = step + theta[r] * (anchor - x) * dt + s * z[t]
        anchor += step
        o[t], h[t], lo[t], c[t] = bridge_bar_nb(x, b, s, u_high[t], u_low[t])
        x += b
        # busier bars when the price moves more than usual
        noise = math.exp(volume_noise * z_vol[t] - 0.5 * volume_noise * volume_noise)
        # 1.2533 = 1 / E|z| = sqrt(pi / 2): the move factor averages 1
        v[t] = base_volume * vol_factor[r] * noise * (0.5 + 0.5 * abs(z[t]) * 1.2533)
    return o, h, lo, c, v


class RegimeModel:
    """Semi-Markov regime model: the ``_target_`` of ``conf/regime/<preset>.yaml``.

    Args:
        regimes: ``name -> {drift, volatility, mean_reversion, volume_factor, min_duration,
            max_duration}``; ``None``: those of ``conf/regime/default.yaml``. ``drift`` and
            ``volatility`` are annualised (365-day year; 0.8 = +80 %/year), ``mean_reversion``
            is the OU pull strength in 1/year (0 = pure GBM), ``volume_factor`` multiplies the
            base volume, durations are in bars (inclusive). The order of the names is the
            integer regime label.
        transitions: ``from -> {to: probability}``; each row must sum to 1; missing entries are
            0. A self-transition starts a fresh spell of the same regime. ``None``: those of
            ``conf/regime/default.yaml``.
        process: ``ou`` applies each regime's mean reversion; ``gbm`` ignores it everywhere.
        initial: Name of the first regime, or ``None`` to draw it uniformly.
    """

    def __init__(
        self,
        regimes: dict[str, dict[str, float]] | None = None,
        transitions: dict[str, dict[str, float]] | None = None,
        process: Literal["gbm", "ou"] = "ou",
        initial: str | None = None,
    ) -> None:
        preset_regimes, preset_transitions = default_regimes()
        regimes = dict(preset_regimes if regimes is None else regimes)
        transitions = dict(preset_transitions if transitions is None else transitions)
        if not regimes:
            raise ValueError("regime.regimes is empty; define at least one regime")
        self.names: tuple[str, ...] = tuple(regimes)
        self.params = {name: self._check_regime(name, dict(p)) for name, p in regimes.items()}
        self.matrix = self._check_transitions(transitions)
        if process not in ("gbm", "ou"):
            raise ValueError(f"regime.process={process!r} is not one of 'gbm', 'ou'")
        self.process = process
        if initial is not None and initial not in self.names:
            raise ValueError(f"regime.initial={initial!r} is not a regime; use one of {self.names}")
        self.initial = initial

    def _check_regime(self, name: str, p: dict[str, float]) -> dict[str, float]:
        missing = [f for f in REGIME_FIELDS if f not in p]
        unknown = [f for f in p if f not in REGIME_FIELDS]
        if missing or unknown:
            raise ValueError(
                f"regime.regimes.{name}: missing {missing}, unknown {unknown}; "
                f"each regime needs exactly {list(REGIME_FIELDS)}"
            )
        if p["volatility"] <= 0 or p["volume_factor"] <= 0 or p["mean_reversion"] < 0:
            raise ValueError(
                f"regime.regimes.{name}: volatility={p['volatility']} and volume_factor="
                f"{p['volume_factor']} must be > 0, mean_reversion={p['mean_reversion']} >= 0"
            )
        if not 1 <= int(p["min_duration"]) <= int(p["max_duration"]):
            raise ValueError(
                f"regime.regimes.{name}: need 1 <= min_duration={p['min_duration']} <= "
                f"max_duration={p['max_duration']} (bars)"
            )
        return {k: float(v) for k, v in p.items()}

    def _check_transitions(self, transitions: dict[str, dict[str, float]]) -> np.ndarray:
        matrix = np.zeros((len(self.names), len(self.names)))
        for src, row in transitions.items():
            if src not in self.names:
                raise ValueError(f"regime.transitions.{src}: unknown regime; use {self.names}")
            for dst, prob in row.items():
                if dst not in self.names:
                    raise ValueError(
                        f"regime.transitions.{src}.{dst}: unknown regime; use {self.names}"
                    )
                if prob < 0:
                    raise ValueError(f"regime.transitions.{src}.{dst}={prob} must be >= 0")
                matrix[self.names.index(src), self.names.index(dst)] = prob
        for i, name in enumerate(self.names):
            total = matrix[i].sum()
            if abs(total - 1.0) > 1e-6:
                raise ValueError(
                    f"regime.transitions.{name} sums to {total:.6g}; its probabilities must "
                    "sum to 1 (missing entries count as 0)"
                )
        return matrix

    def values(self, key: str) -> np.ndarray:
        """One parameter of every regime, in label order (e.g. ``values("drift")``)."""
        return np.array([self.params[n][key] for n in self.names])

    def simulate(
        self,
        num_samples: int,
        dt: float,
        seed: int,
        *,
        base_price: float = 100.0,
        base_volume: float = 1000.0,
        volume_noise: float = 0.3,
    ) -> SyntheticPath:
        """Simulate ``num_samples`` bars of ``dt`` years each.

        Args:
            num_samples: Number of bars.
            dt: Bar length in years (15 minutes = 15 / 525600).
            seed: Seed of the numpy generator; the same seed gives the same market.
            base_price: Price before the first bar.
            base_volume: Typical volume of a bar with volume factor 1.
            volume_noise: Log-normal dispersion of volume.

        Returns:
            The bars, the per-bar regime labels and the spells that produced them.
        """
        rng = np.random.default_rng(seed)
        k = len(self.names)
        first = self.names.index(self.initial) if self.initial else int(rng.integers(k))
        min_dur = self.values("min_duration").astype(np.int64)
        # at most one spell per bar: enough uniforms for the worst case
        n_spells = num_samples // int(min_dur.min()) + 2
        labels, spell_reg, spell_len = sample_spells_nb(
            num_samples,
            np.cumsum(self.matrix, axis=1),
            min_dur,
            self.values("max_duration").astype(np.int64),
            first,
            rng.random(n_spells),
            rng.random(n_spells),
        )
        theta = self.values("mean_reversion") * (self.process == "ou")
        # 1 - U lies in (0, 1]: log() of it is finite
        o, h, lo, c, v = simulate_path_nb(
            labels,
            self.values("drift"),
            self.values("volatility"),
            theta,
            self.values("volume_factor"),
            dt,
            math.log(base_price),
            base_volume,
            volume_noise,
            rng.standard_normal(num_samples),
            1.0 - rng.random(num_samples),
            1.0 - rng.random(num_samples),
            rng.standard_normal(num_samples),
        )
        return SyntheticPath(o, h, lo, c, v, labels, spell_reg, spell_len)


class MarketModel(Protocol):
    """What :class:`SyntheticSource` needs of a ``regime`` option: :class:`RegimeModel`, or
    :class:`cryptotrade.data.planted.AR1Model`."""

    names: tuple[str, ...]

    def values(self, key: str) -> np.ndarray: ...

    def simulate(
        self,
        num_samples: int,
        dt: float,
        seed: int,
        *,
        base_price: float = ...,
        base_volume: float = ...,
        volume_noise: float = ...,
    ) -> SyntheticPath: ...


class SyntheticSource:
    """Bars from a :class:`RegimeModel`: the ``source`` of ``conf/data/synthetic.yaml``.

    Args:
        num_samples: Number of bars to generate.
        timeframe: Bar length, ccxt style (``15m``, ``1h``, ``1d``).
        base_price: Price before the first bar (quote currency).
        base_volume: Typical bar volume in regimes with volume factor 1 (base currency).
        volume_noise: Log-normal dispersion of volume around its regime level.
        seed: Seed of the market; independent of the run's seed so seeds of an agent
            compare on the same market.
        start: Open time of the first bar (UTC, ISO format).
        funding: Whether to add a synthetic perpetual ``funding_rate`` column.
        funding_interval: Hours between funding settlements (at multiples of it since midnight).
        funding_mean: Mean funding rate per settlement (0.0001 = 0.01 %).
        funding_drift_beta: Extra rate per unit of the regime's annualised drift (longs pay in
            uptrends).
        funding_noise: Standard deviation of the rate around its regime level.
        funding_cap: Absolute cap of the rate per settlement.
        regime: The market model (from the ``regime`` config group); ``None`` = the default
            :class:`RegimeModel`.
    """

    def __init__(
        self,
        num_samples: int = 20_000,
        timeframe: str = "15m",
        base_price: float = 30_000.0,
        base_volume: float = 100.0,
        volume_noise: float = 0.3,
        seed: int = 0,
        start: str = "2020-01-01",
        funding: bool = False,
        funding_interval: int = 8,
        funding_mean: float = 0.0001,
        funding_drift_beta: float = 0.0002,
        funding_noise: float = 0.0001,
        funding_cap: float = 0.0075,
        regime: MarketModel | None = None,
    ) -> None:
        if num_samples < 2:
            raise ValueError(f"data.source.num_samples={num_samples} must be >= 2 bars")
        if base_price <= 0 or base_volume <= 0:
            raise ValueError(
                f"data.source.base_price={base_price} and base_volume={base_volume} must be > 0"
            )
        if funding_interval <= 0 or 24 % funding_interval:
            raise ValueError(
                f"data.source.funding_interval={funding_interval} must divide 24 hours (8, 4, 1)"
            )
        self.seconds = timeframe_seconds(timeframe)
        self.num_samples = int(num_samples)
        self.timeframe = timeframe
        self.base_price = float(base_price)
        self.base_volume = float(base_volume)
        self.volume_noise = float(volume_noise)
        self.seed = int(seed)
        stamp = pd.Timestamp(start)
        self.start = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
        self.funding = funding
        self.funding_interval = funding_interval
        self.funding_params = (funding_mean, funding_drift_beta, funding_noise, funding_cap)
        self.regime = regime if regime is not None else RegimeModel()

    def __repr__(self) -> str:
        return (
            f"SyntheticSource(num_samples={self.num_samples}, timeframe={self.timeframe!r}, "
            f"regimes={list(self.regime.names)}, seed={self.seed})"
        )

    def load(self) -> pd.DataFrame:
        """Generate the bars frame (open-time UTC index ``date``; OHLCV, ``regime``, funding)."""
        path = self.regime.simulate(
            self.num_samples,
            self.seconds / SECONDS_PER_YEAR,
            self.seed,
            base_price=self.base_price,
            base_volume=self.base_volume,
            volume_noise=self.volume_noise,
        )
        index = pd.date_range(
            self.start,
            periods=self.num_samples,
            freq=pd.Timedelta(seconds=self.seconds),
            name="date",
        ).as_unit("ns")
        bars = pd.DataFrame(
            {
                "open": path.open,
                "high": path.high,
                "low": path.low,
                "close": path.close,
                "volume": path.volume,
            },
            index=index,
        )
        if self.funding:
            bars["funding_rate"] = self._funding(index, path.regime)
        bars["regime"] = path.regime
        return bars

    def _funding(self, index: pd.DatetimeIndex, labels: np.ndarray) -> np.ndarray:
        """Funding settled on the funding grid, each due on the first bar opening at or after it.

        A settlement's rate follows the regime of the bar it falls in; bars longer than the
        funding interval (or off its grid) collect every settlement as :func:`align_funding`
        does for real data, instead of only one that coincides with their open.
        """
        mean, beta, noise, cap = self.funding_params
        ns = index.asi8
        period = self.funding_interval * 3600 * 10**9
        step = self.seconds * 10**9
        # settlements inside bar j, [open, open + step): the first at ceil(open / period)
        first = -(-ns // period) * period
        count = np.maximum(0, (ns + step - 1 - first) // period + 1)
        # a separate stream so toggling funding leaves the prices unchanged; the first draw of
        # a bar serves its first settlement (so bars on the grid keep their rates)
        rng = np.random.default_rng([self.seed, 1])
        z = rng.standard_normal(len(index))[:, None]
        if count.max() > 1:
            z = np.hstack([z, rng.standard_normal((len(index), int(count.max()) - 1))])
        bar, k = np.nonzero(np.arange(z.shape[1]) < count[:, None])
        drift = self.regime.values("drift")[labels[bar]]
        rate = np.clip(mean + beta * drift + noise * z[bar, k], -cap, cap)
        times = pd.DatetimeIndex(first[bar] + k * period, tz="UTC")
        return align_funding(index, pd.Series(rate, index=times))
