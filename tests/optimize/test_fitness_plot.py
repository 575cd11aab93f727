"""The GA/Tune parent's fitness-over-generations picture has whole-number generation ticks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cryptotrade.launch import tracking
from cryptotrade.optimize.runner import CandidateRunner


@pytest.mark.parametrize("generations", [1, 4, 30])
def test_generation_axis_has_whole_number_ticks_within_the_generations(monkeypatch, generations):
    figures = []
    # the figure is caught where it would be logged (no store: a fast test)
    monkeypatch.setattr(tracking, "recording", lambda artifact: True)
    monkeypatch.setattr(tracking, "log_figure", lambda fig, path: figures.append((fig, path)))
    monkeypatch.setattr(tracking, "log_dict", lambda data, path: None)
    logbook = [
        {"gen": g, "max": -30.0 + g, "mean": -45.0, "min": -57.0} for g in range(generations)
    ]
    runner = SimpleNamespace(kind="ga", metric="val/sharpe")
    CandidateRunner.log_plot(runner, logbook)  # type: ignore[arg-type]
    ((fig, path),) = figures
    assert path == "ga/fitness.png"
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    # one generation used to get -0.045, -0.030, ... 0.045
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert min(ticks) >= 0 and max(ticks) <= generations - 1
