"""Risk and performance metrics of an equity curve, computed once after the backtest loop."""

from __future__ import annotations

import numpy as np

from cryptotrade.timeframes import SECONDS_PER_YEAR


def periods_per_year(timestamps: np.ndarray) -> float:
    """Bars per year from the median spacing of ``datetime64`` timestamps."""
    if len(timestamps) < 2:
        return 1.0
    step = float(np.median(np.diff(timestamps.astype("datetime64[ns]").astype(np.int64)))) / 1e9
    return SECONDS_PER_YEAR / step


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall of ``equity`` as a positive fraction (0.25 = -25%)."""
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak)) if len(equity) else 0.0


def sharpe_ratio(returns: np.ndarray, annualisation: float) -> float:
    """Annualised Sharpe ratio of per-bar simple returns (risk-free rate 0).

    ``mean / std * sqrt(periods per year)``; 0 when the returns do not vary (e.g. always flat).
    """
    if len(returns) < 2:
        return 0.0
    std = returns.std(ddof=1)
    return float(returns.mean() / std * np.sqrt(annualisation)) if std > 1e-12 else 0.0


def sortino_ratio(returns: np.ndarray, annualisation: float) -> float:
    """Annualised Sortino ratio: mean over downside deviation (target 0)."""
    if len(returns) < 2:
        return 0.0
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    return float(returns.mean() / downside * np.sqrt(annualisation)) if downside > 1e-12 else 0.0


def performance(equity: np.ndarray, timestamps: np.ndarray, num_trades: int) -> dict[str, float]:
    """Standard metrics of one backtest.

    Args:
        equity: Mark-to-market equity per bar, starting with the initial capital.
        timestamps: Bar times aligned with ``equity`` (for annualisation).
        num_trades: Closed trades in the backtest.

    Returns:
        ``total_return``, ``sharpe``, ``sortino``, ``max_drawdown``, ``num_trades``,
        ``final_equity``.
    """
    returns = np.diff(equity) / equity[:-1] if len(equity) > 1 else np.zeros(0)
    ann = periods_per_year(timestamps)
    return {
        "total_return": float(equity[-1] / equity[0] - 1.0) if len(equity) else 0.0,
        "sharpe": sharpe_ratio(returns, ann),
        "sortino": sortino_ratio(returns, ann),
        "max_drawdown": max_drawdown(equity),
        "num_trades": float(num_trades),
        "final_equity": float(equity[-1]) if len(equity) else 0.0,
    }
