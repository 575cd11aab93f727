"""The return of a known rule on the planted-edge market, computed without the env.

The reference an agent is measured against: on an AR(1) market with ``phi > 0`` the *sign rule*
(hold a full long after an up bar, a full short after a down bar) captures ``E[r[t+1] | r[t]]``.
A *band rule* (``threshold > 0``) only switches sides when ``|r[t]|`` exceeds the threshold, so
it pays fewer fees. :func:`rule_sides` computes the decisions from the raw closes (numpy, not
the normalised features) and :func:`replay_sides` replays them with the market model's rules,
re-implemented here in plain Python so an error in the env's numba kernels cannot hide in both:

* the side decided at bar ``t`` fills at ``open[t + 1]`` moved against the trader by
  ``slippage_bps`` (+ ``slippage_range`` x the range of bar ``t``), paying ``fee`` on the
  traded notional (a reversal trades twice the position);
* a position is sized to ``leverage x equity`` at the fill and not rebalanced while its side
  holds (``env.action_mode=discrete3``);
* funding settled at a bar's open is paid on the position held into it;
* the account is marked at each close; at the last bar an open position is closed at the close
  with slippage and fee.

A probe market (:mod:`cryptotrade.data.probes`: ``regime=planted``, ``random_walk``, ``gbm``)
brings its own exact rule: :func:`reference_sides` asks the market model for it and
:func:`reference_result` replays it the same way.

``tests/test_learnability.py`` checks that this replay and the env's
:func:`~cryptotrade.evaluation.backtest.run_backtest` of the same rule agree to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.settings import EnvSettings
from cryptotrade.evaluation.metrics import bar_seconds
from cryptotrade.timeframes import SECONDS_PER_YEAR


class LiquidationReached(ValueError):
    """A replayed position reaches its liquidation price (the plain replay does not model it)."""


@dataclass(frozen=True)
class RuleResult:
    """A rule's replay on one split.

    Attributes:
        equity: Marked equity at the close of the first observed bar and of every later bar.
        num_trades: Closed trades (a reversal closes one and opens one).
        fees: Fees paid, quote currency.
        gross_pnl: Price PnL before fees and funding, quote currency.
    """

    equity: np.ndarray
    num_trades: int
    fees: float
    gross_pnl: float

    @property
    def total_return(self) -> float:
        """Final over initial equity, minus 1."""
        return float(self.equity[-1] / self.equity[0] - 1.0)

    @property
    def log_return(self) -> float:
        """``log(final / initial equity)``: the quantity agents are compared on."""
        return float(math.log(self.equity[-1] / self.equity[0]))


def rule_sides(close: np.ndarray, start: int, end: int, threshold: float = 0.0) -> np.ndarray:
    """Sides (+1 long, -1 short, NaN keep) decided at bars ``start .. end - 1``.

    Args:
        close: Close prices of the split (bar ``t``'s return is ``log(close[t] / close[t-1])``).
        start: First decision bar (>= 1).
        end: Last bar of the episode; decisions stop one bar before it.
        threshold: ``|r[t]|`` a bar's log return must exceed to pick a side; smaller moves keep
            the current side (0 = the sign rule: always in the market after the first bar).
    """
    if start < 1:
        raise ValueError(f"start={start} must be >= 1: a decision needs the previous close")
    r = np.log(close[start:end] / close[start - 1 : end - 1])
    sides = np.sign(r)
    sides[np.abs(r) <= threshold] = np.nan
    return sides


def replay_sides(
    data: MarketData, sides: np.ndarray, settings: EnvSettings, *, start: int
) -> RuleResult:
    """Replay target sides on ``data`` with the market model (see the module docstring).

    Args:
        data: The split (raw prices are used; features are not).
        sides: Side decided at bars ``start, start + 1, ...`` (+1, -1, 0 = flat, NaN = keep).
            The episode ends at bar ``start + len(sides)``.
        settings: Fees, slippage, leverage, funding and the starting cash of the env.
        start: First decision bar (the env's evaluation episodes start at ``window - 1``).

    Raises:
        ValueError: For settings this replay does not model (another action mode, a drawdown
            limit, shorts disallowed); :class:`LiquidationReached` for a path that would reach
            the liquidation price.
    """
    if settings.action_mode != "discrete3" or settings.max_drawdown is not None:
        raise ValueError(
            "replay_sides models env.action_mode=discrete3 without env.max_drawdown; got "
            f"{settings.action_mode!r}, max_drawdown={settings.max_drawdown}"
        )
    if not settings.allow_short and np.nanmin(sides, initial=0.0) < 0:
        raise ValueError("sides ask for shorts but env.allow_short is false")
    limit = settings.order_type == "limit"
    fee_rate = settings.maker_fee if limit else settings.taker_fee
    slip_bps = 0.0 if limit else settings.slippage_bps
    slip_range = 0.0 if limit else settings.slippage_range
    lev, mmr = settings.leverage, settings.maintenance_margin
    o, h, lo, c = data.open, data.high, data.low, data.close
    rate = data.funding_rate if settings.funding else np.zeros(len(data))
    end = start + len(sides)
    if end >= len(data):
        raise ValueError(f"{len(sides)} decisions from bar {start} run past the split's end")

    def slipped(price: float, direction: float, bar_range: float) -> float:
        return price + direction * (price * slip_bps * 1e-4 + slip_range * bar_range)

    balance, units, entry, held = settings.initial_cash, 0.0, 0.0, 0.0
    fees = gross = 0.0
    trades = 0
    equity = np.empty(len(sides) + 1)
    equity[0] = balance
    for k, side in enumerate(sides):
        t = start + k
        n = t + 1
        if units != 0.0:
            balance -= units * o[n] * rate[n]
        if not math.isnan(side) and side != held:
            ref_equity = balance + units * (o[n] - entry)
            direction = math.copysign(1.0, side * lev * ref_equity / o[n] - units)
            px = slipped(o[n], direction, h[t] - lo[t])
            new_units = side * lev * ref_equity / px
            fee = abs(new_units - units) * px * fee_rate
            if units != 0.0:
                gross += units * (px - entry)
                balance += units * (px - entry)
                trades += 1
            balance -= fee
            fees += fee
            units, entry, held = new_units, px, side
        if units < 0.0:
            liq = (units * entry - balance) / (units * (1.0 + mmr))
            if h[n] >= liq:
                raise LiquidationReached(f"the short reaches its liquidation price at bar {n}")
        if n == end and units != 0.0:
            px = slipped(c[n], -math.copysign(1.0, units), h[n] - lo[n])
            fee = abs(units) * px * fee_rate
            gross += units * (px - entry)
            balance += units * (px - entry) - fee
            fees += fee
            trades += 1
            units = 0.0
        equity[k + 1] = balance + units * (c[n] - entry)
    return RuleResult(equity=equity, num_trades=trades, fees=fees, gross_pnl=gross)


def rule_result(data: MarketData, settings: EnvSettings, *, threshold: float = 0.0) -> RuleResult:
    """The rule's replay over the env's evaluation episode of ``data`` (window - 1 to the end)."""
    start, end = settings.window - 1, len(data) - 1
    return replay_sides(data, rule_sides(data.close, start, end, threshold), settings, start=start)


class ProbeModel(Protocol):
    """A market model that knows its exact rule (:mod:`cryptotrade.data.probes`)."""

    def reference_sides(
        self, close: np.ndarray, labels: np.ndarray | None, start: int, end: int, dt: float
    ) -> np.ndarray: ...


def probe_model(source: Any) -> ProbeModel | None:
    """The probe model of a data source (``data=probe``/``synthetic`` with ``regime=planted``,
    ``random_walk`` or ``gbm``), or ``None`` for any other source (a file, the regime market)."""
    model = getattr(source, "regime", None)
    return model if callable(getattr(model, "reference_sides", None)) else None


def reference_sides(model: ProbeModel, data: MarketData, settings: EnvSettings) -> np.ndarray:
    """The probe's exact rule over the env's evaluation episode of ``data`` (window - 1 to the
    end): +1 long, -1 short, 0 flat per decision bar (``PlantedModel.reference_sides``)."""
    start, end = settings.window - 1, len(data) - 1
    dt = bar_seconds(data.timestamps) / SECONDS_PER_YEAR
    return model.reference_sides(data.close, data.regime, start, end, dt)


def reference_result(model: ProbeModel, data: MarketData, settings: EnvSettings) -> RuleResult:
    """The probe rule's replay (:func:`replay_sides`) over the evaluation episode of ``data``."""
    sides = reference_sides(model, data, settings)
    return replay_sides(data, sides, settings, start=settings.window - 1)


def best_threshold(data: MarketData, settings: EnvSettings, grid: np.ndarray) -> float:
    """The band threshold of ``grid`` with the highest log return on ``data`` (fit on train)."""
    returns = [_log_return_or_ruin(data, settings, float(x)) for x in grid]
    return float(grid[int(np.argmax(returns))])


def _log_return_or_ruin(data: MarketData, settings: EnvSettings, threshold: float) -> float:
    """The band rule's log return, ``-inf`` where its replay reaches a liquidation (which the
    plain replay does not model: such a threshold is never the best)."""
    try:
        return rule_result(data, settings, threshold=threshold).log_return
    except LiquidationReached:
        return -math.inf
