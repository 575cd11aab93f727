"""Risk and performance metrics of a backtest, computed once after the loop, in pure numpy.

The search calls :func:`performance` thousands of times, so it is plain numpy on arrays (no
pandas). Conventions (checked against empyrical-reloaded and quantstats in the tests):

* Headline ``sharpe``, ``sortino`` and ``volatility`` use **daily** returns (the equity marked at
  the last bar close of each UTC day) annualised with **365 days**: crypto trades every day.
  ``sharpe_per_bar`` / ``sortino_per_bar`` use the bar returns annualised with the bars per year.
  Risk-free rate 0; Sharpe uses the sample std (ddof 1); Sortino's downside deviation is
  ``sqrt(mean(min(r, 0)^2))`` over all returns (target 0).
* ``cagr`` compounds over calendar time: ``(E_end / E_0) ** (365 days / span) - 1``, only for
  a span of at least :data:`MIN_ANNUALISE_DAYS` (365) days (``annualised`` = 1). A shorter
  split is not annualised (``annualised`` = 0): ``cagr`` is then the split's own return and
  ``calmar`` that return over the max drawdown, and the tables show both as ``n/a``.
  Compounding a 30-day return to a year multiplies noise (a 30-day oracle showed a CAGR of
  4e24 %), and the GIPS standards forbid annualising returns of periods shorter than a year.
* ``max_drawdown`` is a positive fraction (0.25 = -25 %); ``max_drawdown_duration`` is the
  longest time, in days, from a peak until equity regained it (or the backtest ended).
* Trade metrics read the env's trade log (:data:`cryptotrade.market.TRADE_DTYPE`): ``win_rate``
  (net PnL > 0), ``profit_factor`` (gross wins / gross losses; ``inf`` without losses),
  ``expectancy`` (mean net PnL per trade, margin currency), ``avg_holding_bars``.
* ``fees_paid``, ``funding_paid`` (negative = received), ``gross_pnl`` (net PnL + fees + funding)
  are in the margin currency (quote for linear contracts, the coin for inverse ones: the
  reports name it); ``exposure`` is the fraction of steps ending with an open position;
  ``turnover`` is the traded notional over the mean equity (1 = the capital traded once).
"""

from __future__ import annotations

import numpy as np

from cryptotrade.timeframes import SECONDS_PER_YEAR

SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = SECONDS_PER_YEAR / SECONDS_PER_DAY  # 365: crypto trades every day of the year
_NS = 1_000_000_000

# the headline metrics the summary table and the report show, in this order
HEADLINE = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "num_trades")
# shortest span (days) whose return is annualised (cagr, calmar); GIPS: never below a year
MIN_ANNUALISE_DAYS = 365.0
# the cost breakdown, margin currency
COSTS = ("gross_pnl", "fees_paid", "funding_paid")


def _seconds(timestamps: np.ndarray) -> np.ndarray:
    """``datetime64`` timestamps as float seconds since the epoch."""
    return timestamps.astype("datetime64[ns]").astype(np.int64) / _NS


def bar_seconds(timestamps: np.ndarray) -> float:
    """Median spacing of ``timestamps`` in seconds (1 when there are fewer than two)."""
    if len(timestamps) < 2:
        return 1.0
    return float(np.median(np.diff(_seconds(timestamps))))


def periods_per_year(timestamps: np.ndarray) -> float:
    """Bars per (365-day) year from the median spacing of ``datetime64`` timestamps."""
    return SECONDS_PER_YEAR / bar_seconds(timestamps) if len(timestamps) >= 2 else 1.0


def simple_returns(equity: np.ndarray) -> np.ndarray:
    """``E_t / E_{t-1} - 1``; a step from zero equity counts as 0 (nothing left to lose)."""
    if len(equity) < 2:
        return np.zeros(0)
    prev = equity[:-1]
    safe = np.where(prev > 0.0, prev, 1.0)
    return np.where(prev > 0.0, equity[1:] / safe - 1.0, 0.0)


def daily_equity(equity: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Equity at the end of each UTC calendar day, preceded by the starting equity.

    Args:
        equity: Marked equity per point.
        times: When each point was marked (``datetime64``; bar close times).

    Returns:
        ``[E_0, E(end of day 1), E(end of day 2), ...]``; days without a point are skipped.
    """
    if len(equity) == 0:
        return equity
    day = times.astype("datetime64[D]").astype(np.int64)
    # a mark exactly at midnight closes the previous day (a bar closing at 00:00 ends that day)
    at_midnight = times.astype("datetime64[ns]") == times.astype("datetime64[D]")
    day = day - at_midnight.astype(np.int64)
    last_of_day = np.flatnonzero(np.diff(day) != 0)
    ends = np.append(last_of_day, len(equity) - 1)
    ends = ends[ends > 0]  # the starting mark is E_0 already
    return np.concatenate([[equity[0]], equity[ends]])


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall of ``equity`` as a positive fraction (0.25 = -25%)."""
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def max_drawdown_duration(equity: np.ndarray, times: np.ndarray) -> float:
    """Longest time in days from an equity peak until it is regained (or the data ends)."""
    if len(equity) < 2:
        return 0.0
    peak = np.maximum.accumulate(equity)
    secs = _seconds(times)
    at_peak = equity >= peak
    last_peak = np.maximum.accumulate(np.where(at_peak, np.arange(len(equity)), 0))
    # an underwater point's spell started at its last peak; the point that regains the peak
    # ends the spell of the point before it
    start = last_peak.copy()
    recovered = at_peak[1:] & ~at_peak[:-1]
    start[1:] = np.where(recovered, last_peak[:-1], last_peak[1:])
    spell = secs - secs[start]
    return float(np.max(spell)) / SECONDS_PER_DAY


def sharpe_ratio(returns: np.ndarray, annualisation: float) -> float:
    """Annualised Sharpe ratio of simple returns (risk-free rate 0).

    ``mean / std(ddof=1) * sqrt(periods per year)``; 0 when the returns do not vary.
    """
    if len(returns) < 2:
        return 0.0
    std = returns.std(ddof=1)
    return float(returns.mean() / std * np.sqrt(annualisation)) if std > 1e-12 else 0.0


def sortino_ratio(returns: np.ndarray, annualisation: float) -> float:
    """Annualised Sortino ratio: mean over downside deviation ``sqrt(mean(min(r, 0)^2))``.

    ``inf`` when no return is negative and the mean is positive; 0 when nothing changed.
    """
    if len(returns) < 2:
        return 0.0
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    if downside <= 1e-12:  # no losing period: unbounded if it made money (as empyrical)
        return float("inf") if returns.mean() > 0.0 else 0.0
    return float(returns.mean() / downside * np.sqrt(annualisation))


def annual_volatility(returns: np.ndarray, annualisation: float) -> float:
    """``std(ddof=1) * sqrt(periods per year)``."""
    return float(returns.std(ddof=1) * np.sqrt(annualisation)) if len(returns) >= 2 else 0.0


def cagr(start_equity: float, end_equity: float, days: float) -> float:
    """Compound annual growth rate over ``days`` calendar days (365-day years)."""
    if days <= 0.0 or start_equity <= 0.0:
        return 0.0
    if end_equity <= 0.0:
        return -1.0
    growth = np.log(end_equity / start_equity) * DAYS_PER_YEAR / days
    return float(np.expm1(growth)) if growth < 700.0 else float("inf")  # a few hours of 10x


def trade_metrics(trades: np.ndarray | None) -> dict[str, float]:
    """Counts and PnL statistics of a trade log (``TRADE_DTYPE`` records)."""
    if trades is None or len(trades) == 0 or not trades.dtype.names:
        zero = dict.fromkeys(("num_trades", "win_rate", "profit_factor", "expectancy"), 0.0)
        zero |= dict.fromkeys(
            ("avg_holding_bars", "fees_paid", "funding_paid", "liquidations"), 0.0
        )
        return zero
    pnl = trades["pnl"].astype(np.float64)
    wins, losses = pnl[pnl > 0.0].sum(), -pnl[pnl < 0.0].sum()
    no_loss = float("inf") if wins > 0.0 else 0.0
    profit_factor = float(wins / losses) if losses > 0.0 else no_loss
    return {
        "num_trades": float(len(trades)),
        "win_rate": float(np.mean(pnl > 0.0)),
        "profit_factor": profit_factor,
        "expectancy": float(pnl.mean()),
        "avg_holding_bars": float(np.mean(trades["exit_index"] - trades["entry_index"])),
        "fees_paid": float(trades["fees"].sum()),
        "funding_paid": float(trades["funding"].sum()),
        "liquidations": float(np.sum(trades["liquidated"])),
    }


def performance(
    equity: np.ndarray,
    timestamps: np.ndarray,
    num_trades: int | None = None,
    *,
    trades: np.ndarray | None = None,
    position: np.ndarray | None = None,
    traded_notional: float = 0.0,
    bar_seconds_: float | None = None,
) -> dict[str, float]:
    """The full metric set of one backtest (see the module docstring for definitions).

    Args:
        equity: Mark-to-market equity per step, starting with the initial capital.
        timestamps: When each equity point was marked (bar close times), ``datetime64``.
        num_trades: Closed trades, when no trade log is given (``trades`` wins otherwise).
        trades: The env's trade log (``TRADE_DTYPE``) for the trade and cost metrics.
        position: Signed exposure after each step (for ``exposure``); aligned with ``equity``.
        traded_notional: Sum of ``|units traded| * fill price`` (for ``turnover``).
        bar_seconds_: Bar length in seconds; default: the median spacing of ``timestamps``.

    Returns:
        ``total_return, cagr, volatility, sharpe, sortino, calmar, max_drawdown,
        max_drawdown_duration, num_trades, win_rate, profit_factor, expectancy,
        avg_holding_bars, exposure, turnover, fees_paid, funding_paid, liquidations, gross_pnl,
        final_equity, sharpe_per_bar, sortino_per_bar``.
    """
    equity = np.asarray(equity, dtype=np.float64)
    if len(equity) == 0:
        raise ValueError("performance() needs at least the starting equity")
    bar = bar_seconds_ if bar_seconds_ is not None else bar_seconds(timestamps)
    days = (len(equity) - 1) * bar / SECONDS_PER_DAY
    daily = simple_returns(daily_equity(equity, timestamps))
    per_bar = simple_returns(equity)
    bars_per_year = SECONDS_PER_YEAR / bar
    annualised = days >= MIN_ANNUALISE_DAYS
    total = float(equity[-1] / equity[0] - 1.0)
    growth = cagr(equity[0], equity[-1], days) if annualised else total
    mdd = max_drawdown(equity)
    out = {
        "total_return": total,
        "cagr": growth,
        "volatility": annual_volatility(daily, DAYS_PER_YEAR),
        "sharpe": sharpe_ratio(daily, DAYS_PER_YEAR),
        "sortino": sortino_ratio(daily, DAYS_PER_YEAR),
        "calmar": growth / mdd if mdd > 1e-12 else 0.0,
        "annualised": float(annualised),
        "max_drawdown": mdd,
        "max_drawdown_duration": max_drawdown_duration(equity, timestamps),
    }
    out |= trade_metrics(trades)
    if trades is None and num_trades is not None:
        out["num_trades"] = float(num_trades)
    held = np.asarray(position)[1:] if position is not None else np.zeros(0)
    out["exposure"] = float(np.mean(held != 0.0)) if len(held) else 0.0
    out["turnover"] = float(traded_notional / np.mean(equity))
    out["gross_pnl"] = float(equity[-1] - equity[0] + out["fees_paid"] + out["funding_paid"])
    out["final_equity"] = float(equity[-1])
    out["sharpe_per_bar"] = sharpe_ratio(per_bar, bars_per_year)
    out["sortino_per_bar"] = sortino_ratio(per_bar, bars_per_year)
    return out


def log_return_fraction(agent_return: float, reference_return: float) -> float:
    """``log(1 + agent) / log(1 + reference)``: the agent's log return as a fraction of the
    reference's (the oracle's); NaN when the reference made nothing."""
    ref = np.log1p(reference_return)
    if ref <= 1e-12:
        return float("nan")
    return float(np.log1p(max(agent_return, -1.0 + 1e-12)) / ref)
