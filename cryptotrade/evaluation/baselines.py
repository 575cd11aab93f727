"""Baselines on the same split, fees and fill rule as the agent, through the same backtest.

:data:`BASELINES` is the registry; ``evaluation.baselines`` in the config lists which of them a
run measures (default all four, in this order):

- ``buy_hold``: long all the time;
- ``flat``: never trades;
- ``random``: uniform actions, one backtest per ``evaluation.random_seeds`` seed: the mean of
  each metric, and its standard deviation as ``<metric>/std``;
- ``oracle``: perfect foresight by dynamic programming (:mod:`cryptotrade.evaluation.oracle`;
  reported as ``oracle_lower_bound`` in the continuous action mode).

A baseline is a function ``(market, seed, settings) -> BaselineRun``; adding one is one entry in
:data:`BASELINES` plus its name in ``evaluation.baselines``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cryptotrade.env.compiled import CompiledMarket
    from cryptotrade.evaluation.backtest import BacktestResult, Policy
    from cryptotrade.evaluation.settings import EvaluationSettings

# The backtest and the oracle (numba) are imported where they run: EvaluationSettings checks
# its names against BASELINES when the config schema is built, which must stay light.

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineRun:
    """One baseline's outcome on a split.

    Attributes:
        name: Its metric namespace (``baseline/<name>/``); the oracle reports itself as
            ``oracle_lower_bound`` where it is not the exact optimum by construction.
        result: Its backtest (``random``: the first seed's, for the pictures).
        metrics: Its metrics (``random``: the mean over seeds plus ``<m>/std``).
        exact: Only the oracle: whether its value is the exact optimum.
    """

    name: str
    result: BacktestResult
    metrics: dict[str, float]
    exact: bool | None = None


@dataclass
class Baselines:
    """Backtests of every baseline on one split.

    Attributes:
        results: One backtest per baseline (``random``: the first seed's, for the pictures).
        metrics: ``name -> metrics``; ``random`` holds the mean over seeds plus ``<m>/std``.
        oracle_exact: Whether the oracle's value is the exact optimum (see ``solve_oracle``).
    """

    results: dict[str, BacktestResult] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    oracle_exact: bool = False


def backtest_on(market: CompiledMarket, policy: Policy, seed: int) -> BacktestResult:
    """One deterministic backtest of ``policy`` over the whole split of ``market``.

    Every backtest of a split (agent, validation, each baseline) runs on a fresh evaluation env
    over the same compiled market: the market is shared, the env's state is its own.
    """
    from cryptotrade.env.trading_env import TradingEnv
    from cryptotrade.evaluation.backtest import run_backtest

    env = TradingEnv(market=market, evaluation=True)
    try:
        return run_backtest(policy, env, seed=seed)
    finally:
        env.close()


def random_metrics(results: Sequence[BacktestResult]) -> dict[str, float]:
    """Mean of each metric over the seeds' backtests, and its std (ddof 0) as ``<m>/std``."""
    keys = results[0].metrics.keys()
    out: dict[str, float] = {}
    for k in keys:
        values = np.array([r.metrics[k] for r in results], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[k] = float(finite.mean()) if len(finite) else float(values[0])
        out[f"{k}/std"] = float(finite.std()) if len(finite) else 0.0
    return out


def buy_hold(market: CompiledMarket, seed: int, settings: EvaluationSettings) -> BaselineRun:
    """Long all the time (target exposure 1)."""
    from cryptotrade.evaluation.backtest import target_policy

    result = backtest_on(market, target_policy(1.0), seed)
    return BaselineRun("buy_hold", result, result.metrics)


def flat(market: CompiledMarket, seed: int, settings: EvaluationSettings) -> BaselineRun:
    """Never trades (target exposure 0)."""
    from cryptotrade.evaluation.backtest import target_policy

    result = backtest_on(market, target_policy(0.0), seed)
    return BaselineRun("flat", result, result.metrics)


def random_actions(market: CompiledMarket, seed: int, settings: EvaluationSettings) -> BaselineRun:
    """Uniform random actions, one backtest per ``settings.random_seeds`` seed."""
    from cryptotrade.evaluation.backtest import random_policy

    runs = [backtest_on(market, random_policy(s), seed) for s in settings.random_seeds]
    return BaselineRun("random", runs[0], random_metrics(runs))


def oracle(market: CompiledMarket, seed: int, settings: EvaluationSettings) -> BaselineRun:
    """Perfect foresight: the DP's action sequence replayed through the env."""
    from cryptotrade.env.trading_env import TradingEnv
    from cryptotrade.evaluation.backtest import sequence_policy
    from cryptotrade.evaluation.oracle import solve_oracle

    solution = solve_oracle(
        TradingEnv(market=market, evaluation=True),  # read, never stepped
        k_max=settings.oracle_frontier,
        max_hold=settings.oracle_max_hold,
    )
    result = backtest_on(market, sequence_policy(solution.actions), seed)
    replayed = result.equity[-1]
    if not np.isclose(replayed, solution.value, rtol=1e-9):
        log.warning(
            "oracle replay ended at %.6g but the DP promised %.6g (e.g. env.max_drawdown "
            "stopped the replay); reporting the replay",
            replayed,
            solution.value,
        )
    metrics = result.metrics | {"exact": float(solution.exact)}
    if not np.isnan(solution.gap):  # no certified bound under a hold limit: nothing to log
        metrics["gap"] = solution.gap
    return BaselineRun(solution.name, result, metrics, exact=solution.exact)


Baseline = Callable[["CompiledMarket", int, "EvaluationSettings"], BaselineRun]
# The registry: evaluation.baselines names entries of it (checked by EvaluationSettings).
BASELINES: dict[str, Baseline] = {
    "buy_hold": buy_hold,
    "flat": flat,
    "random": random_actions,
    "oracle": oracle,
}


def run_baselines(market: CompiledMarket, *, seed: int, settings: EvaluationSettings) -> Baselines:
    """Backtest the baselines ``settings.baselines`` names, in that order, on ``market``.

    Args:
        market: The split's compiled market (the agent's settings, the whole split).
        seed: Env reset seed (the same as the agent's backtest).
        settings: Which baselines, the random seeds and the oracle's limits.
    """
    out = Baselines()
    for key in settings.baselines:
        run = BASELINES[key](market, seed, settings)
        out.results[run.name] = run.result
        out.metrics[run.name] = run.metrics
        if run.exact is not None:
            out.oracle_exact = run.exact
    return out
