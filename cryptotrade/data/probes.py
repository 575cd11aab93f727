"""Probe markets: a planted edge of a known kind, or none, each with its exact reference rule.

A probe tells whether an agent finds an edge that exists (:class:`PlantedModel`) and stays out of
a market that has none (:class:`DriftModel`). Both are ``regime`` options of ``data=synthetic``
(``regime=planted``, ``regime=random_walk``, ``regime=gbm``); ``data=probe`` is the same source
without funding, whose positive mean would otherwise be an edge of its own (shorts collect it).

**Planted edge.** Bar log returns (close over the previous close) follow::

    r[t] = mu + g[t - k] phi (r[t - k] - mu) + m[s[t]] sigma sqrt(1 - phi^2) z[t]

with ``phi = +strength`` (``kind=momentum``) or ``-strength`` (``kind=mean_reversion``), lag
``k``, ``sigma = volatility sqrt(dt)`` and ``mu = drift dt``. ``s[t]`` is the bar's state (0 =
null, 1 = edge; the ``regime`` column) and ``g[t] = 1`` when bar ``t`` is in the edge state: the
return of an edge-state bar predicts the return ``k`` bars later, a null-state bar's does not.
``gate`` chooses how states arise:

==============  ===================================================================================
``none``        every bar is an edge bar (one state, ``edge``)
``regime``      spells of ``min_duration .. max_duration`` bars, each in the edge state with
                probability ``edge_share``; edge spells' volatility is ``contrast`` x (1 = the
                regime shows only through the edge itself)
``volume``      each bar independently an edge bar with probability ``edge_share``; edge bars trade
                ``contrast`` x the volume ("moves on heavy volume continue")
``volatility``  as ``volume``, but edge bars are ``contrast`` x as volatile
==============  ===================================================================================

``m[s]`` is ``contrast`` for edge-state bars of the ``regime`` and ``volatility`` gates, else 1.
With ``gate=none`` the stationary bar volatility is exactly ``sigma``; a gate makes it at most a
factor ``1 / sqrt(1 - phi^2)`` smaller in null-state stretches.

**Reference rule** (:meth:`PlantedModel.reference_sides`, a position sequence): the position
taken at the close of bar ``t`` is the sign of ``E[r[t + 1] | bars <= t] = mu + g[t + 1 - k] phi
(r[t + 1 - k] - mu)``; where that is 0 (a gated edge after a null-state bar, no drift) the
position is kept: the bar carries no information, and a trade would only pay fees (flat there
instead earns less on every gate: measured in experiments/learnability/README.md). Momentum at lag
``k`` holds ``sign(r[t + 1 - k])``, mean reversion the opposite side, a gated edge re-decides only
after edge-state bars and is flat until the first one. It reads bars ``<= t`` only: bars open at
the previous close, so the order filled at ``open[t + 1]`` earns all of ``r[t + 1]``.

**Null markets** (:class:`DriftModel`): i.i.d. normal log returns with mean ``drift dt``. With
``drift = 0`` (a driftless random walk) no policy has a positive expected log return and every
trade costs, so flat is optimal; with ``drift > 0`` (GBM) a long held from the first bar earns the
drift and pays one round trip, the best a causal policy can do. The reference rule holds
``sign(drift)``.

Prices come from the same kernels as the regime market: :func:`~cryptotrade.data.synthetic.
bridge_bar_nb` builds each bar, :func:`~cryptotrade.data.synthetic.sample_spells_nb` draws the
states.
"""

from __future__ import annotations

import math
from typing import Literal

import numba
import numpy as np

from cryptotrade.data.synthetic import SyntheticPath, bridge_bar_nb, sample_spells_nb
from cryptotrade.errors import ConfigError

KINDS = ("momentum", "mean_reversion")
GATES = ("none", "regime", "volume", "volatility")


@numba.njit(cache=True, nogil=True)
def probe_path_nb(
    phi: float,
    lag: int,
    mu: float,
    s_bar: float,
    state: np.ndarray,
    edge: np.ndarray,
    vol_mult: np.ndarray,
    volume_mult: np.ndarray,
    log_p0: float,
    base_volume: float,
    volume_noise: float,
    z: np.ndarray,
    u_high: np.ndarray,
    u_low: np.ndarray,
    z_vol: np.ndarray,
) -> tuple:
    """OHLCV of the probe process (module docstring) along the bar states ``state``.

    ``edge[s]`` is 1 where state ``s`` carries the edge; ``vol_mult[s]`` / ``volume_mult[s]``
    scale a state's innovation volatility and volume. The first ``lag`` returns have no
    predecessor and are drawn from the stationary law.
    """
    n = z.shape[0]
    o = np.empty(n)
    h = np.empty(n)
    lo = np.empty(n)
    c = np.empty(n)
    v = np.empty(n)
    r = np.empty(n)
    root = math.sqrt(1.0 - phi * phi)
    x = log_p0
    for t in range(n):
        m = vol_mult[state[t]]
        if t < lag:
            s = s_bar * m
            r[t] = mu + s * z[t]
        else:
            s = s_bar * m * root
            r[t] = mu + edge[state[t - lag]] * phi * (r[t - lag] - mu) + s * z[t]
        o[t], h[t], lo[t], c[t] = bridge_bar_nb(x, r[t], s, u_high[t], u_low[t])
        x += r[t]
        noise = math.exp(volume_noise * z_vol[t] - 0.5 * volume_noise * volume_noise)
        # 0.7979 = E|z| for a standard normal: the move factor averages ~1; scaled by the state's
        # own volatility, so volume does not reveal a volatility-gated state (only the move does)
        move = 0.5 + 0.5 * abs(r[t] - mu) / (s_bar * m) / 0.7979
        v[t] = base_volume * volume_mult[state[t]] * noise * move
    return o, h, lo, c, v


def _simulate(
    num_samples: int,
    *,
    phi: float,
    lag: int,
    mu: float,
    s_bar: float,
    state: np.ndarray,
    edge: np.ndarray,
    vol_mult: np.ndarray,
    volume_mult: np.ndarray,
    rng: np.random.Generator,
    base_price: float,
    base_volume: float,
    volume_noise: float,
) -> SyntheticPath:
    """Draw the bars of :func:`probe_path_nb` (random streams after the states' from ``rng``)."""
    o, h, lo, c, v = probe_path_nb(
        phi,
        lag,
        mu,
        s_bar,
        state,
        edge,
        vol_mult,
        volume_mult,
        math.log(base_price),
        base_volume,
        volume_noise,
        rng.standard_normal(num_samples),
        1.0 - rng.random(num_samples),  # in (0, 1]: log() of it is finite
        1.0 - rng.random(num_samples),
        rng.standard_normal(num_samples),
    )
    starts = np.flatnonzero(np.diff(state, prepend=-1))  # one spell per run of equal states
    lengths = np.diff(np.append(starts, num_samples))
    return SyntheticPath(o, h, lo, c, v, state.astype(np.int8), state[starts], lengths)


def hold_where_zero(side: np.ndarray) -> np.ndarray:
    """Positions from per-bar signs: a 0 keeps the previous position (flat before the first
    non-zero sign)."""
    last = np.maximum.accumulate(np.where(side != 0, np.arange(len(side)), -1))
    return np.where(last >= 0, side[np.maximum(last, 0)], 0.0)


def _bar_returns(close: np.ndarray, start: int, end: int, lag: int) -> np.ndarray:
    """``r[t + 1 - lag]`` for the decision bars ``t = start .. end - 1``."""
    if start < lag:
        raise ValueError(
            f"the first decision bar {start} must be >= regime.lag={lag}: the rule reads the "
            f"return of bar t + 1 - lag, which needs the close before it"
        )
    first = start + 1 - lag
    return np.log(close[first : end + 1 - lag] / close[first - 1 : end - lag])


class PlantedModel:
    """A market with a planted edge (module docstring): the ``_target_`` of
    ``conf/regime/planted.yaml``.

    Args:
        kind: ``momentum`` (a bar's return predicts the same sign ``lag`` bars later) or
            ``mean_reversion`` (the opposite sign).
        strength: ``|phi|`` in (0, 1): the correlation of an edge bar's return with the return
            ``lag`` bars later.
        lag: ``k >= 1``: how many bars later the edge pays.
        gate: ``none`` (always on), ``regime`` (spells), ``volume`` or ``volatility`` (single
            bars marked by heavier volume / larger moves).
        contrast: How edge-state bars differ (> 0): volatility multiplier (``regime``,
            ``volatility``) or volume multiplier (``volume``); unused with ``gate=none``.
        edge_share: Probability in (0, 1) that a spell (``regime``) or a bar (``volume``,
            ``volatility``) is in the edge state.
        min_duration: Shortest spell of ``gate=regime``, bars.
        max_duration: Longest spell of ``gate=regime``, bars (drawn uniformly in between).
        volatility: Annualised volatility of the bar log returns (365-day year).
        drift: Annualised mean log return (0: buy & hold earns nothing on average).
        volume_factor: Multiplies the source's base volume.

    Raises:
        ConfigError: (a ``ValueError``) naming the setting and its valid range.
    """

    def __init__(
        self,
        kind: Literal["momentum", "mean_reversion"] = "momentum",
        strength: float = 0.3,
        lag: int = 1,
        gate: Literal["none", "regime", "volume", "volatility"] = "none",
        contrast: float = 2.0,
        edge_share: float = 0.5,
        min_duration: int = 200,
        max_duration: int = 1000,
        volatility: float = 1.0,
        drift: float = 0.0,
        volume_factor: float = 1.0,
    ) -> None:
        checks = [
            (kind in KINDS, f"regime.kind={kind!r} must be one of {', '.join(KINDS)}"),
            (gate in GATES, f"regime.gate={gate!r} must be one of {', '.join(GATES)}"),
            (0.0 < strength < 1.0, f"regime.strength={strength} must lie in (0, 1)"),
            (lag >= 1, f"regime.lag={lag} must be >= 1 bar"),
            (contrast > 0.0, f"regime.contrast={contrast} must be > 0"),
            (0.0 < edge_share < 1.0, f"regime.edge_share={edge_share} must lie in (0, 1)"),
            (
                1 <= min_duration <= max_duration,
                f"regime.min_duration={min_duration} and max_duration={max_duration} must "
                "satisfy 1 <= min_duration <= max_duration",
            ),
            (volatility > 0.0, f"regime.volatility={volatility} must be > 0"),
            (volume_factor > 0.0, f"regime.volume_factor={volume_factor} must be > 0"),
            (math.isfinite(drift), f"regime.drift={drift} must be finite"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.kind, self.gate = kind, gate
        self.strength, self.lag = float(strength), int(lag)
        self.contrast, self.edge_share = float(contrast), float(edge_share)
        self.min_duration, self.max_duration = int(min_duration), int(max_duration)
        self.volatility, self.drift = float(volatility), float(drift)
        self.volume_factor = float(volume_factor)
        self.names: tuple[str, ...] = ("edge",) if gate == "none" else ("null", "edge")

    def __repr__(self) -> str:
        return (
            f"PlantedModel(kind={self.kind!r}, strength={self.strength}, lag={self.lag}, "
            f"gate={self.gate!r}, volatility={self.volatility}, drift={self.drift})"
        )

    @property
    def phi(self) -> float:
        """The signed lag coefficient: ``+strength`` (momentum) or ``-strength``."""
        return self.strength if self.kind == "momentum" else -self.strength

    def _multipliers(self) -> tuple[np.ndarray, np.ndarray]:
        """Volatility and volume multipliers per state."""
        vol = np.ones(len(self.names))
        volume = np.full(len(self.names), self.volume_factor)
        if self.gate in ("regime", "volatility"):
            vol[-1] = self.contrast
        elif self.gate == "volume":
            volume[-1] *= self.contrast
        return vol, volume

    def values(self, key: str) -> np.ndarray:
        """One parameter per state, as :meth:`RegimeModel.values` (funding reads ``drift``)."""
        vol, volume = self._multipliers()
        table = {
            "drift": np.full(len(self.names), self.drift),
            "volatility": self.volatility * vol,
            "volume_factor": volume,
            "autocorrelation": np.array([0.0, self.phi])[-len(self.names) :],
        }
        if key not in table:
            raise KeyError(f"PlantedModel has no parameter {key!r}; use one of {sorted(table)}")
        return np.asarray(table[key], dtype=np.float64)

    def _states(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        """The state of every bar (0 = null, 1 = edge; all 0 = ``edge`` with ``gate=none``)."""
        if self.gate == "none":
            return np.zeros(num_samples, dtype=np.int64)
        p = self.edge_share
        longest = self.max_duration if self.gate == "regime" else 1
        shortest = self.min_duration if self.gate == "regime" else 1
        n_spells = num_samples // shortest + 2
        u_next, u_dur = rng.random(n_spells), rng.random(n_spells)
        labels, _, _ = sample_spells_nb(
            num_samples,
            np.array([[1.0 - p, 1.0], [1.0 - p, 1.0]]),  # cumulative: any spell -> edge w.p. p
            np.array([shortest, shortest], dtype=np.int64),
            np.array([longest, longest], dtype=np.int64),
            int(rng.random() < p),
            u_next,
            u_dur,
        )
        return labels.astype(np.int64)

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
        """Simulate ``num_samples`` bars of ``dt`` years each (same seed, same market).

        Args:
            num_samples: Number of bars (more than ``lag``).
            dt: Bar length in years (15 minutes = 15 / 525600).
            seed: Seed of the numpy generator.
            base_price: Price before the first bar.
            base_volume: Typical volume of a bar.
            volume_noise: Log-normal dispersion of volume.

        Returns:
            The bars; ``regime`` labels each bar's state (index into :attr:`names`).
        """
        if num_samples <= self.lag:
            raise ConfigError(
                f"data.source.num_samples={num_samples} must exceed regime.lag={self.lag}"
            )
        rng = np.random.default_rng(seed)
        state = self._states(num_samples, rng)
        vol, volume = self._multipliers()
        edge = (np.arange(len(self.names)) == len(self.names) - 1).astype(np.float64)
        return _simulate(
            num_samples,
            phi=self.phi,
            lag=self.lag,
            mu=self.drift * dt,
            s_bar=self.volatility * math.sqrt(dt),
            state=state,
            edge=edge,
            vol_mult=vol,
            volume_mult=volume,
            rng=rng,
            base_price=base_price,
            base_volume=base_volume,
            volume_noise=volume_noise,
        )

    def reference_sides(
        self, close: np.ndarray, labels: np.ndarray | None, start: int, end: int, dt: float
    ) -> np.ndarray:
        """The exact rule's position (+1 long, -1 short, 0 flat) taken at bars ``start .. end - 1``.

        Args:
            close: Close prices of the split (bars open at the previous close).
            labels: The split's state labels (``MarketData.regime``); ``None`` only with
                ``gate=none``.
            start: First decision bar (>= ``lag``).
            end: Last bar of the episode; decisions stop one bar before it.
            dt: Bar length in years (the drift per bar is ``drift x dt``).

        Returns:
            ``sign(E[r[t + 1] | bars <= t])`` per decision bar ``t``, the previous position where
            it is 0 (module docstring).
        """
        mu = self.drift * dt
        r = _bar_returns(close, start, end, self.lag)
        if self.gate == "none":
            on = np.ones(len(r))
        else:
            if labels is None:
                raise ValueError(f"regime.gate={self.gate!r} needs the bars' regime labels")
            first = start + 1 - self.lag
            on = (np.asarray(labels[first : end + 1 - self.lag]) == 1).astype(np.float64)
        return hold_where_zero(np.sign(mu + on * self.phi * (r - mu)))


class DriftModel:
    """A null market: i.i.d. normal log returns (module docstring). The ``_target_`` of
    ``conf/regime/random_walk.yaml`` (``drift: 0``) and ``conf/regime/gbm.yaml``.

    Args:
        drift: Annualised mean log return (0: a driftless random walk; > 0: a GBM whose
            arithmetic drift is ``drift + volatility^2 / 2``).
        volatility: Annualised volatility of the bar log returns (365-day year).
        volume_factor: Multiplies the source's base volume.

    Raises:
        ConfigError: (a ``ValueError``) naming the setting and its valid range.
    """

    names: tuple[str, ...] = ("drift",)

    def __init__(
        self, drift: float = 0.0, volatility: float = 1.0, volume_factor: float = 1.0
    ) -> None:
        if not math.isfinite(drift):
            raise ConfigError(f"regime.drift={drift} must be finite")
        if volatility <= 0.0 or volume_factor <= 0.0:
            raise ConfigError(
                f"regime.volatility={volatility} and regime.volume_factor={volume_factor} "
                "must be > 0"
            )
        self.drift, self.volatility = float(drift), float(volatility)
        self.volume_factor = float(volume_factor)

    def __repr__(self) -> str:
        return f"DriftModel(drift={self.drift}, volatility={self.volatility})"

    def values(self, key: str) -> np.ndarray:
        """One parameter for the single state, as :meth:`RegimeModel.values`."""
        table = {
            "drift": self.drift,
            "volatility": self.volatility,
            "volume_factor": self.volume_factor,
            "autocorrelation": 0.0,
        }
        if key not in table:
            raise KeyError(f"DriftModel has no parameter {key!r}; use one of {sorted(table)}")
        return np.array([table[key]])

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
        """Simulate ``num_samples`` bars of ``dt`` years each (same seed, same market).

        Args:
            num_samples: Number of bars.
            dt: Bar length in years.
            seed: Seed of the numpy generator.
            base_price: Price before the first bar.
            base_volume: Typical volume of a bar.
            volume_noise: Log-normal dispersion of volume.

        Returns:
            The bars; every bar carries label 0.
        """
        one = np.ones(1)
        return _simulate(
            num_samples,
            phi=0.0,
            lag=1,
            mu=self.drift * dt,
            s_bar=self.volatility * math.sqrt(dt),
            state=np.zeros(num_samples, dtype=np.int64),
            edge=np.zeros(1),
            vol_mult=one,
            volume_mult=one * self.volume_factor,
            rng=np.random.default_rng(seed),
            base_price=base_price,
            base_volume=base_volume,
            volume_noise=volume_noise,
        )

    def reference_sides(
        self, close: np.ndarray, labels: np.ndarray | None, start: int, end: int, dt: float
    ) -> np.ndarray:
        """``sign(drift)`` at every decision bar: flat on the random walk, long on a GBM.

        Args:
            close: Close prices of the split (only its length matters).
            labels: Unused (one state).
            start: First decision bar (>= 1).
            end: Last bar of the episode; decisions stop one bar before it.
            dt: Bar length in years (unused: the sign of the drift decides).
        """
        if not 1 <= start < end <= len(close):
            raise ValueError(f"decision bars {start}..{end} must lie in 1..{len(close)}")
        return np.full(end - start, np.sign(self.drift))
