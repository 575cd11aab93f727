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
        _plain_log_ticks(ax, lo, hi)
        return True
    return False


def _plain_log_ticks(ax: Any, lo: float, hi: float) -> None:
    """Label a log axis with 4-8 plain numbers (12,000 not 1.2 x 10^4).

    matplotlib's log ticks sit at powers of ten: a curve from 8,400 to 17,900 would get only
    "9 x 10^3" and "10^4", its upper half unlabelled. Within two decades the ticks are round
    linear steps (placed on the log axis); beyond, 1-2-5 per decade.
    """
    from matplotlib import ticker

    if hi / lo < 100.0:
        values = ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    else:
        values = ticker.LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)).tick_values(lo, hi)
    inside = [v for v in values if lo <= v <= hi and v > 0.0]
    ax.yaxis.set_major_locator(ticker.FixedLocator(inside))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_plain_number))


def _plain_number(value: float, _pos: int | None = None) -> str:
    """A tick label without exponent: thousands separated (12,000), small values to 4
    significant digits (0.9500 -> 0.95)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _concise_dates(fig: Any) -> None:
    """Date axes labelled by matplotlib's ConciseDateFormatter: the year or month once, at the
    first tick or in the offset, so labels stay short and never overlap."""
    from matplotlib import dates as mdates

    for ax in fig.axes:
        formatter = ax.xaxis.get_major_formatter()
        # a date axis: matplotlib's formatter, or pandas' subclass once pandas registered its
        # converters (any earlier pandas plot in the process does)
        dated = (mdates.AutoDateFormatter, mdates.ConciseDateFormatter, mdates.DateFormatter)
        if isinstance(formatter, dated):
            locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    _concise_dates(fig)
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


MAX_MARKERS = 200  # more trades than this: counted per period instead of one marker each
# Period lengths for aggregated pictures: the shortest giving at most MAX_PERIODS bars.
PERIODS: tuple[tuple[str, int], ...] = (
    ("1 h", 1), ("4 h", 4), ("12 h", 12), ("day", 24), ("2 days", 48), ("week", 168),
    ("2 weeks", 336), ("month", 720), ("quarter", 2190),
)  # fmt: skip
MAX_PERIODS = 120


def _period(times: np.ndarray) -> tuple[str, np.ndarray]:
    """A readable period for ``times`` (``datetime64``) and the bin edges that tile them."""
    start, end = times[0], times[-1]
    hours = float((end - start) / np.timedelta64(1, "h"))
    name, size = next(((n, h) for n, h in PERIODS if hours / h <= MAX_PERIODS), PERIODS[-1])
    step = np.timedelta64(size, "h")
    count = int(np.ceil(hours / size)) + 1
    edges = start.astype("datetime64[h]") + np.arange(count + 1) * step
    return name, edges.astype("datetime64[ns]")


def trades_plot(agent: BacktestResult, close: np.ndarray) -> bytes:
    """Close price with the agent's trades.

    Up to :data:`MAX_MARKERS` trades: every entry (triangle) and exit (cross), coloured by side;
    entries and exits fill at a bar's open, so they are drawn at that bar's open time. More:
    markers would hide the price, so a panel below counts the entries per period instead (long
    up, short down).
    """
    trades = agent.trades
    if len(trades) > MAX_MARKERS:
        return _trades_per_period(agent, close)
    fig, ax = _figure(4.0)
    ax.plot(agent.close_times, close[agent.index], lw=0.8, color="black", label="close")
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


def _trades_per_period(agent: BacktestResult, close: np.ndarray) -> bytes:
    """The price above, the entries per period below (long up, short down)."""
    import matplotlib.pyplot as plt
    from matplotlib import dates as mdates

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 5.0), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.plot(agent.close_times, close[agent.index], lw=0.8, color="black", label="close")
    top.set_ylabel("price")
    trades = agent.trades
    name, edges = _period(np.asarray(agent.close_times, dtype="datetime64[ns]"))
    left = mdates.date2num(edges[:-1])
    width = np.diff(mdates.date2num(edges))
    for side, colour, label in ((1, "#2ca02c", "long"), (-1, "#d62728", "short")):
        entries = trades["entry_time"][trades["side"] == side].astype("datetime64[ns]")
        counts, _ = np.histogram(entries.astype(np.int64), bins=edges.astype(np.int64))
        bottom.bar(left, side * counts, width=width, align="edge", color=colour, alpha=0.8,
                   label=f"{label} entries ({int(counts.sum())})")  # fmt: skip
    bottom.axhline(0.0, color="black", lw=0.6)
    bottom.set_ylabel(f"entries per {name}")
    bottom.legend(loc="upper left", fontsize=8, ncol=2)
    win = float(np.mean(trades["pnl"] > 0)) if len(trades) else float("nan")
    top.set_title(
        f"Price with the agent's {len(trades)} trades, counted per {name} below "
        f"({100 * win:.0f}% winners)"
    )
    return _png(fig)


def position_plot(agent: BacktestResult) -> bytes:
    """Exposure over time (signed notional / equity after each step) as a filled area: long
    above zero in green, short below in red; with many changes, the mean per period on top."""
    fig, ax = _figure(2.8)
    times, pos = agent.close_times, np.asarray(agent.position, dtype=float)
    for above, colour, label in ((True, "#2ca02c", "long"), (False, "#d62728", "short")):
        mask = pos > 0 if above else pos < 0
        ax.fill_between(times, pos, 0.0, where=mask, step="post", color=colour, alpha=0.45,
                        lw=0, label=label)  # fmt: skip
    changes = int(np.count_nonzero(np.diff(pos)))
    if changes > MAX_MARKERS:  # the areas alone are a barcode: show the mean per period
        name, edges = _period(np.asarray(times, dtype="datetime64[ns]"))
        periods = len(edges) - 1
        slot = np.searchsorted(edges, np.asarray(times, dtype="datetime64[ns]"), side="right") - 1
        sums = np.bincount(slot, weights=pos, minlength=periods)[:periods]
        counts = np.bincount(slot, minlength=periods)[:periods]
        used = counts > 0
        centres = edges[:-1] + (edges[1:] - edges[:-1]) // 2
        ax.plot(centres[used], sums[used] / counts[used], color="black", lw=1.2,
                label=f"mean per {name}")  # fmt: skip
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title(f"Position (signed notional / equity; {changes} changes)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
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
    # the sums start together at 0 on the left and may head either way: matplotlib finds the
    # corner they leave free (a fixed upper left sat on curves that fall, ~0.1 s more at 50k bars)
    ax.legend(loc="best", fontsize=8, ncol=4)
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
