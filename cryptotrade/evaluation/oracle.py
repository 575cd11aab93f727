"""The perfect-foresight oracle: the most any action sequence could make on a split.

Same env, same fees, slippage, funding, fill rule and forced close; only the future is known.
Computed exactly by dynamic programming over positions (:mod:`cryptotrade.evaluation.oracle_nb`)
for the discrete action modes:

==================  ===========================================================================
``discrete3``       exact over all action sequences (short / flat / long, reversals in one step)
``discrete4``       exact (long and short only from flat)
``buy_sell_hold``   exact with ``inventory_levels=1``; more levels are not supported
``continuous``      a **lower bound** of the continuous optimum: the exact best over policies whose
                    target is always -1, 0 or +1 (x leverage); logged as ``oracle_lower_bound``
==================  ===========================================================================

A DP that keeps every Pareto-optimal candidate is exact but can be slow; with a capped frontier
the value found is certified by a relaxed DP that hands every position its closing cost back
(an upper bound): ``gap = upper / value - 1`` bounds how far from optimal it is (~0 in practice).

The oracle ignores ``env.max_drawdown`` (a stop on the path's own peak, which no DP over
positions can carry): its value is the best achievable without that stop, an upper bound of the
best with it. Its action sequence is replayed through the env by the backtest, and that replay
must end at the DP's value (checked and reported as ``exact``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryptotrade.env.actions import action_for_target
from cryptotrade.env.core import MODE_BSH, MODE_CONTINUOUS, P_MAX_DD, P_MODE
from cryptotrade.evaluation.oracle_nb import FLAT, LONG, SHORT, oracle_dp_nb

K_MAX = 8  # frontier points per (bar, side); one or two are typical


@dataclass(frozen=True)
class OracleSolution:
    """The DP's answer for one evaluation episode.

    Attributes:
        value: Best final equity found (quote currency); its actions reach it.
        exact: Whether ``value`` is proven optimal: no frontier overflowed, or the relaxed
            DP's upper bound equals it (within 1e-9).
        actions: One action per step, ready for ``env.step``.
        name: ``oracle`` (discrete modes) or ``oracle_lower_bound`` (continuous mode).
        upper_bound: No action sequence ends above this (the relaxed DP); NaN when a hold
            limit was set (the relaxed DP then bounds only the limited policies).
    """

    value: float
    exact: bool
    actions: list[Any]
    name: str
    upper_bound: float = math.nan

    @property
    def gap(self) -> float:
        """``upper_bound / value - 1``: how far from the optimum the value can be at most."""
        return self.upper_bound / self.value - 1.0 if self.value > 0 else math.nan


def _action_tables(env: Any) -> tuple[np.ndarray, np.ndarray]:
    """``hold[side]`` and ``move[from, to]`` actions as floats (NaN = not allowed/reachable)."""
    mode, levels = env.settings.action_mode, env.settings.inventory_levels
    hold = np.full(3, np.nan)
    move = np.full((3, 3), np.nan)
    for side in (SHORT, FLAT, LONG):
        sign = float(side - 1)
        hold[side] = float(np.ravel(action_for_target(mode, sign, sign, sign * levels, levels))[0])
        for to in (SHORT, FLAT, LONG):
            if to != side:
                target = float(to - 1)
                a = action_for_target(mode, target, sign, sign * levels, levels)
                move[side, to] = float(np.ravel(a)[0])
    for side in (SHORT, LONG):  # a "reversal" that only closes (discrete4, buy_sell_hold)
        if move[side, 2 - side] == move[side, FLAT]:
            move[side, 2 - side] = np.nan
    if not env.settings.allow_short:
        hold[SHORT] = np.nan
        move[:, SHORT] = np.nan
        move[SHORT, :] = np.nan
    return hold, move


def solve_oracle(env: Any, k_max: int = K_MAX, max_hold: int | None = None) -> OracleSolution:
    """Run the DP on an evaluation :class:`~cryptotrade.env.TradingEnv` (whole split).

    Args:
        env: The env the policy is evaluated in (``evaluation=True``); it is not stepped.
        k_max: Frontier capacity per (bar, side).
        max_hold: Hold a position at most this many bars (faster on long splits; the answer is
            then a lower bound, ``exact=False``); ``None``: no limit.

    Raises:
        ValueError: For ``buy_sell_hold`` with ``inventory_levels > 1``.
    """
    base = env.unwrapped
    market = base.market
    params = market.params.copy()
    mode = int(params[P_MODE])
    if mode == MODE_BSH and base.settings.inventory_levels > 1:
        raise ValueError(
            f"the oracle supports buy_sell_hold with env.inventory_levels=1 only (got "
            f"{base.settings.inventory_levels}); drop oracle from evaluation.baselines or use "
            "1 level"
        )
    params[P_MAX_DD] = math.inf
    hold, move = _action_tables(base)
    start, end = base.window - 1, len(base.data) - 1
    horizon = end - start if max_hold is None else min(max_hold, end - start)
    prices, inverse = market.prices, bool(market.inverse)
    value, exact, actions = oracle_dp_nb(
        params, prices, start, end, hold, move, k_max, horizon, False, inverse
    )
    upper = math.nan
    if horizon == end - start:
        if not exact:  # certify with the relaxed DP (one point per frontier, C = 0)
            upper = oracle_dp_nb(params, prices, start, end, hold, move, 1, horizon, True, inverse)[
                0
            ]
            exact = upper <= value * (1.0 + 1e-9)
        else:
            upper = value
    else:
        exact = False
    continuous = mode == MODE_CONTINUOUS
    as_actions: list[Any] = [
        np.array([a], dtype=np.float32) if continuous else int(a) for a in actions
    ]
    return OracleSolution(
        value=float(value),
        exact=bool(exact),
        actions=as_actions,
        name="oracle_lower_bound" if continuous else "oracle",
        upper_bound=float(upper),
    )
