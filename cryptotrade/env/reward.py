"""The weighted reward: named components, each reported in ``info`` so reward hacking is visible.

The reward of a step is ``sum_i weight_i * component_i``; ``info["reward/<name>"]`` holds each
weighted contribution and the last step of an episode adds ``info["episode/reward/<name>"]``,
the episode sums. Components (all computed in :func:`reward_components_nb`):

================  ==================================================================================
``pnl``           step log return of equity ``log(E_t+1 / E_t)`` (fees and funding included)
``drawdown``      minus the current drawdown from the episode's equity peak, ``-(1 - E / peak)``
``sharpe``        Sharpe ratio (mean / std) of the last ``sharpe_window`` step log returns
``fees``          minus the fees paid this step as a fraction of equity
``benchmark``     step log return minus buy & hold's, ``log(E_t+1/E_t) - log(close_t+1/close_t)``
                  (inverse contracts: buy & hold of the BTC margin returns 0 in BTC, so it is the
                  step log return; in USD terms the excess return is the same number)
``idle``          -1 for every step spent flat beyond ``idle_threshold`` consecutive flat steps
``profit_bonus``  net PnL of trades closed with a profit this step, as a fraction of equity
``trade``         -1 for every trade opened (from flat, or by reversing)
``funding``       funding received (+) or paid (-) this step as a fraction of equity
``liquidation``   -1 on the step the position is liquidated
================  ==================================================================================

``pnl`` already contains fees and funding; the ``fees`` and ``funding`` components let a preset
weigh them again, e.g. to discourage churning beyond its true cost.
"""

from __future__ import annotations

import math

import numpy as np

from cryptotrade.market.jit import kernel

COMPONENTS: tuple[str, ...] = (
    "pnl",
    "drawdown",
    "sharpe",
    "fees",
    "benchmark",
    "idle",
    "profit_bonus",
    "trade",
    "funding",
    "liquidation",
)
(C_PNL, C_DRAWDOWN, C_SHARPE, C_FEES, C_BENCHMARK, C_IDLE, C_PROFIT, C_TRADE, C_FUNDING, C_LIQ) = (
    range(len(COMPONENTS))
)
N_COMPONENTS = len(COMPONENTS)


class WeightedReward:
    """Weights of the reward components (the ``_target_`` of ``conf/reward/*.yaml``).

    Args:
        pnl: Weight of the step log return of equity.
        drawdown: Weight of the drawdown penalty (current drawdown fraction, negated).
        sharpe: Weight of the rolling Sharpe ratio of step returns.
        fees: Weight of the fee penalty (fees / equity, negated).
        benchmark: Weight of the excess log return over buy & hold.
        idle: Weight of the idle penalty (-1 per flat step beyond ``idle_threshold``).
        profit_bonus: Weight of the bonus on profitable closes (net PnL / equity).
        trade: Weight of the trade penalty (-1 per opened trade).
        funding: Weight of the funding term (received - paid, / equity).
        liquidation: Weight of the liquidation penalty (-1 on liquidation).
        sharpe_window: Number of step returns in the rolling Sharpe ratio (>= 2).
        idle_threshold: Consecutive flat steps allowed before the idle penalty starts.
    """

    def __init__(
        self,
        pnl: float = 1.0,
        drawdown: float = 0.0,
        sharpe: float = 0.0,
        fees: float = 0.0,
        benchmark: float = 0.0,
        idle: float = 0.0,
        profit_bonus: float = 0.0,
        trade: float = 0.0,
        funding: float = 0.0,
        liquidation: float = 0.0,
        sharpe_window: int = 30,
        idle_threshold: int = 24,
    ) -> None:
        if sharpe_window < 2:
            raise ValueError(f"reward.sharpe_window={sharpe_window} must be >= 2 returns")
        if idle_threshold < 0:
            raise ValueError(f"reward.idle_threshold={idle_threshold} must be >= 0 steps")
        self.pnl, self.drawdown, self.sharpe, self.fees = pnl, drawdown, sharpe, fees
        self.benchmark, self.idle, self.profit_bonus = benchmark, idle, profit_bonus
        self.trade, self.funding, self.liquidation = trade, funding, liquidation
        self.sharpe_window = int(sharpe_window)
        self.idle_threshold = int(idle_threshold)

    @property
    def weights(self) -> np.ndarray:
        """Weights in :data:`COMPONENTS` order, float64."""
        return np.array([float(getattr(self, name)) for name in COMPONENTS], dtype=np.float64)

    def __repr__(self) -> str:
        active = ", ".join(f"{n}={getattr(self, n)}" for n in COMPONENTS if getattr(self, n))
        return f"WeightedReward({active}, sharpe_window={self.sharpe_window})"


@kernel
def rolling_sharpe_nb(buf: np.ndarray, row: int, count: int) -> float:
    """Mean / std (population) of the last ``min(count, W)`` entries of ring buffer ``buf[row]``."""
    n = min(count, buf.shape[1])
    if n < 2:
        return 0.0
    mean = 0.0
    for k in range(n):
        mean += buf[row, k]
    mean /= n
    var = 0.0
    for k in range(n):
        var += (buf[row, k] - mean) ** 2
    std = math.sqrt(var / n)
    return mean / std if std > 1e-12 else 0.0


@kernel
def reward_components_nb(
    out: np.ndarray,
    i: int,
    weights: np.ndarray,
    log_ret: float,
    drawdown: float,
    sharpe: float,
    fees: float,
    bench_log_ret: float,
    idle: bool,
    profit: float,
    opened: int,
    funding_paid: float,
    liquidated: bool,
    equity_before: float,
) -> float:
    """Write each weighted component into ``out[i]`` and return the reward (their sum)."""
    out[i, C_PNL] = log_ret
    out[i, C_DRAWDOWN] = -drawdown
    out[i, C_SHARPE] = sharpe
    out[i, C_FEES] = -fees / equity_before
    out[i, C_BENCHMARK] = log_ret - bench_log_ret
    out[i, C_IDLE] = -1.0 if idle else 0.0
    out[i, C_PROFIT] = profit / equity_before
    out[i, C_TRADE] = -float(opened)
    out[i, C_FUNDING] = -funding_paid / equity_before
    out[i, C_LIQ] = -1.0 if liquidated else 0.0
    total = 0.0
    for c in range(out.shape[1]):
        out[i, c] *= weights[c]
        total += out[i, c]
    return total
