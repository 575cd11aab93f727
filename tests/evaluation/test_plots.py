"""Pictures stay readable at thousands of trades, and date labels never crowd (issue 19)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cryptotrade.evaluation import plots
from cryptotrade.evaluation.backtest import BacktestResult
from cryptotrade.market.records import TRADE_DTYPE


def result(bars: int, seed: int = 0) -> tuple[BacktestResult, np.ndarray]:
    """A 15-minute backtest whose position changes often (a trade every ~10 bars), and its
    close prices."""
    rng = np.random.default_rng(seed)
    opens = np.datetime64("2024-01-01T00:00", "ns") + np.arange(bars) * np.timedelta64(15, "m")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    draws = rng.choice([-1.0, 0.0, 1.0], bars)
    pos = np.zeros(bars)
    for i in range(1, bars):  # hold, or with 15 % chance move to a random side
        pos[i] = draws[i] if rng.random() < 0.15 else pos[i - 1]
    edges = np.flatnonzero(np.diff(pos) != 0) + 1
    rows = [
        (a, b, opens[a], opens[b], int(pos[a]), 1.0, close[a], close[b], 0.0, 0.0, 1.0, False)
        for a, b in itertools.pairwise(edges)
        if pos[a] != 0
    ]
    n = bars - 1
    return BacktestResult(
        timestamps=opens, close_times=opens + np.timedelta64(15, "m"), index=np.arange(bars),
        equity=np.full(bars, 1e4), position=pos, units=pos, rewards=np.zeros(n),
        components=np.zeros((n, 10)), trades=np.array(rows, dtype=TRADE_DTYPE), metrics={},
    ), close  # fmt: skip


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions render (their PNG bytes are not inspectable)."""
    seen = []
    render = plots._png

    def keep(fig):
        seen.append(fig)
        return render(fig)

    monkeypatch.setattr(plots, "_png", keep)
    return seen


def test_thousands_of_trades_are_counted_per_period_not_drawn_one_by_one(figures):
    from matplotlib import dates as mdates

    agent, close = result(10_000)
    trades = agent.trades
    assert len(trades) > 3 * plots.MAX_MARKERS
    # as after any pandas plot in the process: pandas' date converters are registered, and the
    # axes get pandas' formatter subclass (it must still be made concise)
    pd.plotting.register_matplotlib_converters()
    try:
        assert plots.trades_plot(agent, close).startswith(b"\x89PNG")
    finally:
        pd.plotting.deregister_matplotlib_converters()
    (fig,) = figures
    price, counts = fig.axes
    assert not price.collections, "no marker per trade"
    heights = np.array([bar.get_height() for bar in counts.patches])
    assert heights[heights > 0].sum() == np.sum(trades["side"] == 1)
    assert -heights[heights < 0].sum() == np.sum(trades["side"] == -1)
    assert len(counts.patches) <= 2 * (plots.MAX_PERIODS + 2)
    for ax in fig.axes:
        assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)


def test_a_few_trades_keep_their_markers_and_position_is_a_filled_area(figures):
    agent, close = result(300)
    assert 0 < len(agent.trades) <= plots.MAX_MARKERS
    plots.trades_plot(agent, close)
    plots.position_plot(agent)
    markers, position = figures
    assert len(markers.axes[0].collections) == 4  # entries and exits of each side
    ax = position.axes[0]
    assert [c.get_label() for c in ax.collections] == ["long", "short"]  # two filled areas
    assert not ax.lines[1:], "no mean line for a position that changes a few times"


def test_periods_are_readable_and_tile_the_span():
    times = np.datetime64("2024-01-01", "ns") + np.arange(0, 90 * 24) * np.timedelta64(1, "h")
    name, edges = plots._period(times)
    assert name == "day"
    assert edges[0] <= times[0] and edges[-1] > times[-1]
    assert len(edges) - 1 <= plots.MAX_PERIODS + 2


@pytest.mark.parametrize(
    ("lo", "hi", "most"),
    [(8_400.0, 17_900.0, 8), (0.62, 1.9, 8), (1e4, 3e6, 12)],  # the browser test's 2x; BTC; 300x
)
def test_log_equity_axis_is_labelled_with_plain_numbers_across_its_span(figures, lo, hi, most):
    agent, _ = result(400)
    equity = np.geomspace(lo, hi, len(agent.equity))
    plots.equity_plot(replace(agent, equity=equity), {}, log_scale=True)
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    # matplotlib's own log ticks give "9 x 10^3" and "10^4" here: the upper half unlabelled
    assert 4 <= len(ticks) <= most, ticks
    assert max(ticks) > lo * (hi / lo) ** 0.6, "the upper part of the span is labelled"
    assert not any("10^" in s or "times" in s or "e+" in s for s in labels), labels
    assert not ax.get_yticks(minor=True).size, "no unlabelled minor ticks"


@pytest.mark.parametrize("drift", [-1.0, 1.0])
def test_reward_legend_leaves_the_curves_visible(figures, drift):
    agent, _ = result(400)
    n = len(agent.rewards)
    components = np.zeros((n, agent.components.shape[1]))
    components[:, 0] = drift * 0.05 + np.sin(np.arange(n) / 9.0) * 0.01  # falls (or rises) from 0
    components[:, 1] = -0.01
    agent = replace(agent, components=components, rewards=components.sum(axis=1))
    plots.reward_components_plot(agent)
    (fig,) = figures
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the figure was closed: draw it again to place the legend
    canvas.draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent(canvas.get_renderer())
    covered = 0
    for line in ax.lines:
        x, y = line.get_transform().transform(line.get_xydata()).T
        covered += int(np.sum((x > box.x0) & (x < box.x1) & (y > box.y0) & (y < box.y1)))
    assert covered == 0, f"{covered} curve points under the legend"
