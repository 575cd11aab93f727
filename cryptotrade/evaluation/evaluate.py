"""Evaluate a policy on one split: backtest, baselines, comparisons, regimes, pictures, report.

:func:`evaluate_split` is the one evaluation path: model selection calls it on the validation
split (``baselines=False``), the pipeline on the test split, a seed loop once per seed and
walk-forward once per fold. It takes the split's compiled market (one per split, shared by every
env on it) and returns ``/``-namespaced metrics and, when an MLflow run is active, logs them with
the artifacts under ``<prefix>/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cryptotrade.evaluation.backtest import BacktestResult, Policy
from cryptotrade.evaluation.baselines import Baselines
from cryptotrade.evaluation.metrics import log_return_fraction, simple_returns
from cryptotrade.evaluation.report import currency_label
from cryptotrade.evaluation.settings import EvaluationSettings
from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from cryptotrade.env.compiled import CompiledMarket

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What :func:`evaluate_split` produced.

    Attributes:
        metrics: Every logged metric (``<prefix>/...``, ``baseline/<name>/...``).
        agent: The agent's backtest.
        baselines: The baselines' backtests (empty without baselines).
        summary: The terminal table (agent vs baselines, costs).
        html: The HTML report ('' when off).
        pictures: PNG bytes by file name.
        currency: What the money metrics are in (the margin currency).
    """

    metrics: dict[str, float]
    agent: BacktestResult
    baselines: Baselines = field(default_factory=Baselines)
    summary: str = ""
    html: str = ""
    pictures: dict[str, bytes] = field(default_factory=dict)
    currency: str = "quote currency"


def regime_breakdown(result: BacktestResult, names: Sequence[str] | None) -> dict[str, float]:
    """Per-regime return, bar count and exposure of a backtest whose data has regime labels.

    A step is attributed to the regime of the bar it ends on. ``regime/<name>/return`` is the
    compounded return over that regime's steps, ``.../bars`` their number and ``.../exposure``
    the fraction of them ending in a position.
    """
    if result.regime is None or len(result.equity) < 2:
        return {}
    returns = simple_returns(result.equity)
    labels = np.asarray(result.regime[1:], dtype=np.int64)
    out: dict[str, float] = {}
    for k in np.unique(labels):
        mask = labels == k
        name = names[k] if names is not None and 0 <= k < len(names) else str(k)
        out[f"regime/{name}/return"] = float(np.prod(1.0 + returns[mask]) - 1.0)
        out[f"regime/{name}/bars"] = float(mask.sum())
        out[f"regime/{name}/exposure"] = float(np.mean(result.position[1:][mask] != 0.0))
    return out


def comparisons(agent: dict[str, float], baselines: Baselines) -> dict[str, float]:
    """``return_vs_oracle`` (agent log return / oracle's) and ``excess_vs_buy_hold``."""
    out: dict[str, float] = {}
    if "buy_hold" in baselines.metrics:
        out["excess_vs_buy_hold"] = (
            agent["total_return"] - baselines.metrics["buy_hold"]["total_return"]
        )
    for name in ("oracle", "oracle_lower_bound"):
        if name in baselines.metrics:
            out["return_vs_oracle"] = log_return_fraction(
                agent["total_return"], baselines.metrics[name]["total_return"]
            )
    return out


def evaluate_split(
    policy: Policy,
    market: CompiledMarket,
    *,
    prefix: str,
    seed: int,
    settings: EvaluationSettings | None = None,
    baselines: bool = True,
    regime_names: Sequence[str] | None = None,
    config_yaml: str = "",
    log_to_run: bool = True,
) -> Evaluation:
    """Backtest ``policy`` on the split of ``market`` and measure it against the baselines.

    The one evaluation path: model selection on validation (``baselines=False``, not logged
    here), the test split, every walk-forward fold and every training seed call it; the agent
    and every baseline run on fresh envs over the one compiled ``market``.

    Args:
        policy: The agent (``model_policy(model)``).
        market: The split's compiled market (``components.env.compile(split, reward)``).
        prefix: Metric and artifact namespace (``test``, ``val``, ``seed3/test`` ...).
        seed: Env reset seed.
        settings: Baselines, oracle, pictures and report settings (default: the defaults).
        baselines: Run the baselines ``settings.baselines`` names (then also the comparisons,
            summary table, pictures and report); ``False``: the agent's metrics only.
        regime_names: Names of the regime labels (synthetic markets); with them, and regime
            labels in the data, the per-regime breakdown is added.
        config_yaml: The run's composed config, for the report.
        log_to_run: Log metrics and artifacts to the active MLflow run.

    Returns:
        The metrics, backtests, summary table, report and pictures.
    """
    from cryptotrade.evaluation.baselines import backtest_on, run_baselines

    settings = settings or EvaluationSettings()
    agent = backtest_on(market, policy, seed)
    metrics = {f"{prefix}/{k}": v for k, v in agent.metrics.items()}
    if regime_names is not None:
        breakdown = regime_breakdown(agent, regime_names)
        metrics |= {f"{prefix}/{k}": v for k, v in breakdown.items()}
    out = Evaluation(metrics=metrics, agent=agent, currency=currency_label(market.inverse))
    if baselines:
        out.baselines = run_baselines(market, seed=seed, settings=settings)
        for name, m in out.baselines.metrics.items():
            metrics |= {f"baseline/{name}/{k}": v for k, v in m.items()}
        metrics |= {
            f"{prefix}/{k}": v for k, v in comparisons(agent.metrics, out.baselines).items()
        }
        columns = {"agent": agent.metrics} | out.baselines.metrics
        from cryptotrade.evaluation.report import summary_table

        out.summary = summary_table(prefix, columns)
        if settings.plots or settings.report:
            from cryptotrade.evaluation.plots import all_plots

            out.pictures = all_plots(
                agent,
                out.baselines.results,
                np.asarray(market.data.close),
                log_scale=settings.log_scale,
                currency=out.currency,
            )
        if settings.report:
            out.html = _report(prefix, columns, metrics, out, config_yaml)
    if log_to_run:
        _log(prefix, out, settings)
    return out


def _report(
    prefix: str,
    columns: dict[str, dict[str, float]],
    metrics: dict[str, float],
    out: Evaluation,
    config_yaml: str,
) -> str:
    from cryptotrade.evaluation.report import html_report

    extra = {
        k.removeprefix(f"{prefix}/"): v
        for k, v in metrics.items()
        if k.startswith(f"{prefix}/") and ("vs_" in k or "/regime/" in k)
    }
    exact = out.baselines.oracle_exact
    notes = [
        "Sharpe, Sortino and volatility use daily returns annualised with 365 days; "
        "sharpe_per_bar / sortino_per_bar use bar returns.",
        "Every baseline runs through the same env: same split, fees, slippage, funding and "
        "fill rule (decide at a bar's close, fill at the next open).",
        "oracle: perfect foresight by dynamic programming over positions; "
        + (
            "exact optimum."
            if exact
            else "a lower bound of the optimum (frontier or hold "
            "limit reached, see evaluation.oracle_*); without env.max_drawdown."
        ),
        "Timestamps are bar close times: when each equity point was marked.",
        f"Money (equity, fees, funding, PnL) is in the margin currency: {out.currency}.",
    ]
    return html_report(
        title=f"cryptotrade evaluation: {prefix} split",
        columns=columns,
        extra=extra,
        pictures=out.pictures,
        config_yaml=config_yaml,
        notes=notes,
        currency=out.currency,
    )


def _log(prefix: str, out: Evaluation, settings: EvaluationSettings) -> None:
    """Metrics, equity curve, trades, pictures and report of one evaluation to the active run."""
    if not tracking.recording(f"the {prefix} evaluation"):
        return
    import pandas as pd

    from cryptotrade.env.reward import COMPONENTS

    # MLflow stores inf (profit_factor without a losing trade) as the largest float, NaN as NaN
    tracking.log_metrics(out.metrics)
    agent = out.agent
    curve = pd.DataFrame(
        {
            "open_time": agent.timestamps,
            "close_time": agent.close_times,
            "equity": agent.equity,
            "position": agent.position,
            "units": agent.units,
            "reward": np.concatenate([[np.nan], agent.rewards]),
        }
    )
    for c, name in enumerate(COMPONENTS):
        curve[f"reward/{name}"] = np.concatenate([[np.nan], agent.components[:, c]])
    tracking.log_text(curve.to_csv(index=False), f"{prefix}/equity.csv")
    if agent.trades.dtype.names:
        tracking.log_text(pd.DataFrame(agent.trades).to_csv(index=False), f"{prefix}/trades.csv")
    if out.summary:
        tracking.log_text(out.summary + "\n", f"{prefix}/summary.txt")
    if settings.plots:
        log_files(out.pictures, f"{prefix}/plots")
    if out.html:
        tracking.log_text(out.html, f"{prefix}/report.html")


def log_files(files: dict[str, bytes], folder: str) -> None:
    """Log in-memory files (``name -> bytes``) under ``folder`` of the active run."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            tracking.log_artifact(path, folder)
