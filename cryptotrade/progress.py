"""Progress lines that read the same in a terminal, a pipe, ``nohup`` and CI logs.

A rich bar redraws one line and shows nothing in a log file, so training and searches also
log one line per milestone (a validation, a GA generation) with the elapsed time and an ETA
from the rate so far.
"""

from __future__ import annotations

import time


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``: short enough for a log line."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Clock:
    """Elapsed time and a linear ETA for ``total`` units of work started now.

    Args:
        total: Units of work in all (env steps, generations).
        done: Units already done before this clock started (a resumed run); the rate counts
            only the units done since.
    """

    def __init__(self, total: float, done: float = 0.0) -> None:
        self.total = float(total)
        self.start_done = float(done)
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self.start

    def eta(self, done: float) -> str:
        """The remaining time at the rate so far; ``?`` before any unit is done."""
        progressed = float(done) - self.start_done
        if progressed <= 0:
            return "?"
        remaining = max(self.total - float(done), 0.0)
        return duration(self.elapsed() / progressed * remaining)

    def summary(self, done: float) -> str:
        """``<elapsed> elapsed, ETA <eta>``."""
        return f"{duration(self.elapsed())} elapsed, ETA {self.eta(done)}"
