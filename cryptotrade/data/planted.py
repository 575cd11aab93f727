"""A synthetic market with a planted, learnable edge: AR(1) log returns.

The log return of bar ``t`` (close over the previous close) follows::

    r[t] = mu + phi (r[t-1] - mu) + sigma_eps z[t],   sigma_eps = sigma_bar sqrt(1 - phi^2)

with ``sigma_bar = volatility * sqrt(dt)`` the stationary per-bar volatility and
``mu = drift * dt``. So ``E[r[t+1] | r[t]] = mu + phi (r[t] - mu)``: the last bar's return, which
every feature set with a one-bar ``log_return`` shows the agent, predicts the next bar's. Bars
open at the previous close (as in :mod:`cryptotrade.data.synthetic`), so an order decided at bar
``t`` and filled at the open of bar ``t + 1`` captures all of ``r[t + 1]``: the edge survives the
market model's one-bar delay.
``high``/``low`` come from a Brownian bridge between open and close with the innovation's
volatility, volume grows with the size of the bar's move.

:class:`AR1Model` is a drop-in for :class:`~cryptotrade.data.synthetic.RegimeModel` (one regime,
``ar1``): ``conf/regime/ar1.yaml`` plugs it into ``data=synthetic`` (``regime=ar1``). The return of
the rule that exploits it is computed independently of the env by
:mod:`experiments.learnability.oracle`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cryptotrade.data.synthetic import SyntheticPath, bridge_bar_nb


@numba.njit(cache=True, nogil=True)
def ar1_path_nb(
    phi: float,
    mu: float,
    s_bar: float,
    log_p0: float,
    base_volume: float,
    volume_noise: float,
    z: np.ndarray,
    u_high: np.ndarray,
    u_low: np.ndarray,
    z_vol: np.ndarray,
) -> tuple:
    """OHLCV of an AR(1) log-return path (the first return drawn from the stationary law)."""
    n = z.shape[0]
    o = np.empty(n)
    h = np.empty(n)
    lo = np.empty(n)
    c = np.empty(n)
    v = np.empty(n)
    s_eps = s_bar * math.sqrt(1.0 - phi * phi)
    x = log_p0
    r = mu
    for t in range(n):
        if t == 0:
            r = mu + s_bar * z[0]
            s = s_bar
        else:
            r = mu + phi * (r - mu) + s_eps * z[t]
            s = s_eps
        o[t], h[t], lo[t], c[t] = bridge_bar_nb(x, r, s, u_high[t], u_low[t])
        x += r
        noise = math.exp(volume_noise * z_vol[t] - 0.5 * volume_noise * volume_noise)
        # 0.7979 = E|r / s_bar| for a standard normal: the move factor averages 1
        v[t] = base_volume * noise * (0.5 + 0.5 * abs(r - mu) / s_bar / 0.7979)
    return o, h, lo, c, v


class AR1Model:
    """AR(1) log returns: the ``_target_`` of ``conf/regime/ar1.yaml``.

    Args:
        autocorrelation: ``phi`` in (-1, 1): correlation of consecutive bar log returns.
            Positive = momentum (the sign of the last bar's return predicts the next one's).
        volatility: Annualised stationary volatility of the bar log returns (365-day year).
        drift: Annualised mean log return (0 = no trend, so buy & hold earns nothing on average).
        volume_factor: Multiplies the source's base volume.
    """

    names: tuple[str, ...] = ("ar1",)

    def __init__(
        self,
        autocorrelation: float = 0.3,
        volatility: float = 1.0,
        drift: float = 0.0,
        volume_factor: float = 1.0,
    ) -> None:
        if not -1.0 < autocorrelation < 1.0:
            raise ValueError(
                f"regime.autocorrelation={autocorrelation} must lie in (-1, 1) for a stationary "
                "AR(1) process"
            )
        if volatility <= 0 or volume_factor <= 0:
            raise ValueError(
                f"regime.volatility={volatility} and regime.volume_factor={volume_factor} "
                "must be > 0"
            )
        self.autocorrelation = float(autocorrelation)
        self.volatility = float(volatility)
        self.drift = float(drift)
        self.volume_factor = float(volume_factor)

    def __repr__(self) -> str:
        return (
            f"AR1Model(autocorrelation={self.autocorrelation}, volatility={self.volatility}, "
            f"drift={self.drift})"
        )

    def values(self, key: str) -> np.ndarray:
        """One parameter per regime, as :meth:`RegimeModel.values` (funding reads ``drift``)."""
        table = {
            "drift": self.drift,
            "volatility": self.volatility,
            "mean_reversion": 0.0,
            "volume_factor": self.volume_factor,
            "autocorrelation": self.autocorrelation,
        }
        if key not in table:
            raise KeyError(f"AR1Model has no parameter {key!r}; use one of {sorted(table)}")
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
            dt: Bar length in years (15 minutes = 15 / 525600).
            seed: Seed of the numpy generator.
            base_price: Price before the first bar.
            base_volume: Typical volume of a bar.
            volume_noise: Log-normal dispersion of volume.

        Returns:
            The bars; every bar carries regime label 0 and the whole path is one spell.
        """
        rng = np.random.default_rng(seed)
        o, h, lo, c, v = ar1_path_nb(
            self.autocorrelation,
            self.drift * dt,
            self.volatility * math.sqrt(dt),
            math.log(base_price),
            base_volume * self.volume_factor,
            volume_noise,
            rng.standard_normal(num_samples),
            1.0 - rng.random(num_samples),  # in (0, 1]: log() of it is finite
            1.0 - rng.random(num_samples),
            rng.standard_normal(num_samples),
        )
        labels = np.zeros(num_samples, dtype=np.int8)
        return SyntheticPath(
            o, h, lo, c, v, labels, np.zeros(1, np.int64), np.array([num_samples], np.int64)
        )
