"""matplotlib pictures of one evaluation (PNG bytes, Agg backend: no display needed).

Every picture's x axis is the bar **close** time: when each equity point was marked.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryptotrade.env.reward import COMPONENTS
from cryptotrade.evaluation.backtest import BacktestResult

COLOURS = {"agent": "#1f77b4", "buy_hold": "#7f7f7f", "flat": "#bcbd22", "random": "#9467bd"}
ORACLE_COLOUR = "#2ca02c"


def _figure(height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    ax.grid(alpha=0.3)
    return fig, ax


def _log_y(ax: Any, values: Sequence[np.ndarray], log_scale: bool) -> bool:
    """Log scale when asked and the curves span more than a factor of 2 (else it only distorts
    the tick labels); returns whether it was applied."""
    lo = min(float(np.min(v)) for v in values)
    hi = max(float(np.max(v)) for v in values)
    if log_scale and lo > 0.0 and hi / lo > 2.0:
        ax.set_yscale("log")
        return True
    return False


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def equity_plot(
    agent: BacktestResult,
    baselines: Mapping[str, BacktestResult],
    *,
    log_scale: bool,
    currency: str = "quote currency",
) -> bytes:
    """Equity of the agent against every baseline (the oracle dashed), optionally log scale."""
    fig, ax = _figure(4.2)
    for name, result in baselines.items():
        oracle = name.startswith("oracle")
        ax.plot(
            result.close_times,
            result.equity,
            label=name,
            lw=1.0,
            ls="--" if oracle else "-",
            color=ORACLE_COLOUR if oracle else COLOURS.get(name),
            alpha=0.9,
        )
    ax.plot(agent.close_times, agent.equity, label="agent", lw=1.6, color=COLOURS["agent"])
    curves = [agent.equity, *(r.equity for r in baselines.values())]
    logged = _log_y(ax, curves, log_scale)
    ax.set_title("Equity (marked at each bar's close)" + (", log scale" if logged else ""))
    ax.set_ylabel(f"equity ({currency})")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def drawdown_plot(agent: BacktestResult, buy_hold: BacktestResult | None) -> bytes:
    """Drawdown from the running peak of the agent (and buy & hold), in percent."""
    fig, ax = _figure(3.0)

    def drawdown(result: BacktestResult) -> np.ndarray:
        return 100.0 * (result.equity / np.maximum.accumulate(result.equity) - 1.0)

    ax.fill_between(
        agent.close_times, drawdown(agent), 0.0, alpha=0.4, color=COLOURS["agent"], label="agent"
    )
    if buy_hold is not None:
        ax.plot(buy_hold.close_times, drawdown(buy_hold), lw=1.0, color="#555555", label="buy_hold")
    ax.set_title("Drawdown from the running peak")
    ax.set_ylabel("%")
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def trades_plot(agent: BacktestResult, close: np.ndarray) -> bytes:
    """Close price with the agent's entries (triangles) and exits (crosses), coloured by side.

    Entries and exits fill at a bar's open, so they are drawn at that bar's open time.
    """
    fig, ax = _figure(4.0)
    ax.plot(agent.close_times, close[agent.index], lw=0.8, color="black", label="close")
    trades = agent.trades
    if len(trades):
        sides = ((1, "#2ca02c", "^", "long"), (-1, "#d62728", "v", "short"))
        # exits first, entries on top: a reversal's exit and entry share a bar and a price
        for side, colour, _, label in sides:
            mine = trades[trades["side"] == side]
            ax.scatter(
                mine["exit_time"],
                mine["exit_price"],
                marker="x",
                s=18,
                color=colour,
                label=f"{label} exit",
                zorder=3,
                alpha=0.8,
            )
        for side, colour, marker, label in sides:
            mine = trades[trades["side"] == side]
            ax.scatter(
                mine["entry_time"],
                mine["entry_price"],
                marker=marker,
                s=30,
                color=colour,
                label=f"{label} entry",
                zorder=4,
                alpha=0.8,
                edgecolors="white",
                linewidths=0.4,
            )
    ax.set_title(f"Price with the agent's {len(trades)} trades (fills at the bar open)")
    ax.set_ylabel("price")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    return _png(fig)


def position_plot(agent: BacktestResult) -> bytes:
    """Exposure over time: signed notional / equity after each step."""
    fig, ax = _figure(2.6)
    ax.step(agent.close_times, agent.position, where="post", lw=0.9, color=COLOURS["agent"])
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title("Position (signed notional / equity)")
    return _png(fig)


def reward_components_plot(agent: BacktestResult) -> bytes:
    """Cumulative sum of every non-zero weighted reward component over the episode."""
    fig, ax = _figure(3.2)
    cum = np.cumsum(agent.components, axis=0)
    shown = 0
    for c, name in enumerate(COMPONENTS):
        if np.any(agent.components[:, c] != 0.0):
            ax.plot(agent.close_times[1:], cum[:, c], lw=1.0, label=name)
            shown += 1
    ax.plot(
        agent.close_times[1:],
        np.cumsum(agent.rewards),
        lw=1.0,
        ls="--",
        color="black",
        label="total reward",
    )
    ax.set_title(f"Reward components over the episode (cumulative; {shown} non-zero)")
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    return _png(fig)


def equity_band_plot(
    curves: Sequence[BacktestResult], seeds: Sequence[int], *, log_scale: bool
) -> bytes:
    """Equity across training seeds: the median, the interquartile band and the full range.

    Curves that ended early (a liquidation) hold their last value to the end.
    """
    fig, ax = _figure(4.0)
    longest = max(curves, key=lambda r: len(r.equity))
    n = len(longest.equity)
    stack = np.stack([np.pad(r.equity, (0, n - len(r.equity)), mode="edge") for r in curves])
    times = longest.close_times
    lo, q1, med, q3, hi = np.percentile(stack, [0, 25, 50, 75, 100], axis=0)
    ax.fill_between(times, lo, hi, color=COLOURS["agent"], alpha=0.15, label="min - max")
    ax.fill_between(times, q1, q3, color=COLOURS["agent"], alpha=0.35, label="25 - 75 %")
    ax.plot(times, med, color=COLOURS["agent"], lw=1.6, label="median")
    _log_y(ax, [lo, hi], log_scale)
    ax.set_title(f"Equity across {len(curves)} training seeds ({', '.join(map(str, seeds))})")
    ax.set_ylabel("equity (quote currency)")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def all_plots(
    agent: BacktestResult,
    baselines: Mapping[str, BacktestResult],
    close: np.ndarray,
    *,
    log_scale: bool,
    currency: str = "quote currency",
) -> dict[str, bytes]:
    """Every picture of one evaluation, by file name (money axes in ``currency``)."""
    return {
        "equity.png": equity_plot(agent, baselines, log_scale=log_scale, currency=currency),
        "drawdown.png": drawdown_plot(agent, baselines.get("buy_hold")),
        "trades.png": trades_plot(agent, close),
        "position.png": position_plot(agent),
        "reward_components.png": reward_components_plot(agent),
    }
