"""Baselines on the same split, fees and fill rule as the agent, through the same backtest.

``buy_hold`` (long all the time), ``flat`` (never trades), ``random`` (uniform actions, several
seeds: the mean of each metric, and its standard deviation as ``<metric>/std``) and the
perfect-foresight ``oracle`` (:mod:`cryptotrade.evaluation.oracle`; ``oracle_lower_bound`` in the
continuous action mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryptotrade.evaluation.backtest import (
    BacktestResult,
    random_policy,
    run_backtest,
    sequence_policy,
    target_policy,
)
from cryptotrade.evaluation.oracle import solve_oracle

log = logging.getLogger(__name__)

EnvMaker = Callable[[], Any]  # a fresh evaluation TradingEnv of the split


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


def _backtest(make_env: EnvMaker, policy: Any, seed: int) -> BacktestResult:
    env = make_env()
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


def run_baselines(
    make_env: EnvMaker,
    *,
    seed: int,
    random_seeds: Sequence[int],
    oracle: bool = True,
    oracle_frontier: int = 2,
    oracle_max_hold: int | None = None,
) -> Baselines:
    """Backtest every baseline on the split ``make_env`` builds.

    Args:
        make_env: Builds a fresh evaluation env (the agent's settings, the whole split).
        seed: Env reset seed (the same as the agent's backtest).
        random_seeds: Seeds of the random policy.
        oracle: Compute the perfect-foresight oracle.
        oracle_frontier: Frontier capacity of the oracle DP per (bar, side).
        oracle_max_hold: Longest hold the oracle DP considers, in bars (None: no limit).
    """
    out = Baselines()
    for name, target in (("buy_hold", 1.0), ("flat", 0.0)):
        out.results[name] = _backtest(make_env, target_policy(target), seed)
        out.metrics[name] = out.results[name].metrics
    if random_seeds:
        runs = [_backtest(make_env, random_policy(s), seed) for s in random_seeds]
        out.results["random"] = runs[0]
        out.metrics["random"] = random_metrics(runs)
    if oracle:
        env = make_env()
        solution = solve_oracle(env, k_max=oracle_frontier, max_hold=oracle_max_hold)
        env.close()
        result = _backtest(make_env, sequence_policy(solution.actions), seed)
        replayed = result.equity[-1]
        if not np.isclose(replayed, solution.value, rtol=1e-9):
            log.warning(
                "oracle replay ended at %.6g but the DP promised %.6g (e.g. env.max_drawdown "
                "stopped the replay); reporting the replay",
                replayed,
                solution.value,
            )
        out.results[solution.name] = result
        out.metrics[solution.name] = result.metrics | {"exact": float(solution.exact)}
        if not np.isnan(solution.gap):  # no certified bound under a hold limit: nothing to log
            out.metrics[solution.name]["gap"] = solution.gap
        out.oracle_exact = solution.exact
    return out
