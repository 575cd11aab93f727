"""Walk-forward results: stitch the folds' out-of-sample curves, aggregate, plot.

The task (:mod:`cryptotrade.tasks.walkforward`) trains, selects and tests fold by fold. Every fold
of :class:`~cryptotrade.data.splits.WalkForward` is one nested MLflow run: the agent trains on the
fold's training window (normaliser fit there only), the model is selected on the fold's validation
block, and the selected model is backtested once on the fold's test block, which follows the
validation block in time and is never read before that. The parent run gets the per-fold test
metrics' mean (``walkforward/<metric>/mean``), the metrics of the stitched out-of-sample equity
curve (``test/<metric>``), buy & hold stitched over the same blocks (``baseline/buy_hold/<metric>``)
and the curves (``walkforward/equity.csv`` and ``walkforward/equity.png``).

Each fold's test backtest starts flat with the initial capital; the stitched curve chains the
folds' returns, so it is the equity of one account that restarts flat at every fold boundary.
The first ``env.window - 1`` bars of every test block only fill the observation window (no
trade is decided before a full window), exactly as in a plain run's test split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cryptotrade.evaluation.metrics import performance

if TYPE_CHECKING:
    from cryptotrade.evaluation.backtest import BacktestResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldResult:
    """One fold: its validation metrics (selection) and its single test backtest."""

    index: int
    val_metrics: dict[str, float]
    test: BacktestResult
    buy_hold: BacktestResult


def stitch(results: list[BacktestResult], initial_cash: float) -> pd.DataFrame:
    """Chain the folds' test equity curves into one out-of-sample curve.

    Every fold's curve is turned into returns relative to its own start; the stitched equity
    compounds them from ``initial_cash``. A fold's first point (its starting equity) is dropped
    after the first fold, so each bar appears once.

    Returns:
        Columns ``date``, ``equity``, ``position`` and ``fold``.
    """
    frames, level = [], float(initial_cash)
    for k, res in enumerate(results):
        growth = res.equity / res.equity[0]
        start = 0 if k == 0 else 1
        frames.append(
            pd.DataFrame(
                {
                    "date": res.timestamps[start:],
                    "equity": level * growth[start:],
                    "position": res.position[start:],
                    "fold": k,
                }
            )
        )
        level *= float(growth[-1])
    return pd.concat(frames, ignore_index=True)


def aggregate(folds: list[FoldResult], curve: pd.DataFrame) -> dict[str, float]:
    """Parent metrics: the stitched curve's ``test/...`` and per-fold means and spreads."""
    trades = sum(len(f.test.trades) for f in folds)
    metrics = {
        f"test/{k}": float(v)
        for k, v in performance(
            curve["equity"].to_numpy(), curve["date"].to_numpy(), num_trades=trades
        ).items()
    }
    for key in folds[0].test.metrics:
        values = np.array([f.test.metrics[key] for f in folds], dtype=np.float64)
        metrics[f"walkforward/{key}/mean"] = float(np.mean(values))
        metrics[f"walkforward/{key}/std"] = float(np.std(values))
    metrics["walkforward/folds"] = float(len(folds))
    return metrics


def plot_curve(curve: pd.DataFrame) -> bytes | None:
    """The stitched curve as a PNG (fold boundaries dashed); ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib comes with the evaluation plots; the CSV is always logged
        log.warning("matplotlib is not installed: no walkforward/equity.png")
        return None
    import io

    fig, ax = plt.subplots(figsize=(10, 4))
    dates = pd.to_datetime(curve["date"])
    ax.plot(dates, curve["equity"], lw=1.0, label="out-of-sample equity (stitched)")
    if "buy_hold" in curve:
        ax.plot(dates, curve["buy_hold"], lw=0.8, color="grey", label="buy & hold (same folds)")
    for start in curve.groupby("fold")["date"].first().iloc[1:]:
        ax.axvline(pd.Timestamp(start), color="grey", ls="--", lw=0.7)  # type: ignore[arg-type]
    # the stitched curve spans gaps between folds; concise labels never collide
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title("Walk-forward: out-of-sample equity, fold boundaries dashed")
    ax.set_ylabel("equity")
    ax.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
