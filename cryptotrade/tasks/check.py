"""``task=check``: look-ahead checks of the configured features; fails if any column leaks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptotrade.components import Components
from cryptotrade.launch import tracking
from cryptotrade.tasks.context import RunContext

if TYPE_CHECKING:
    from cryptotrade.data.leakage import LeakageReport


class LeakageError(RuntimeError):
    """Features use information from the future (``task=check`` found offending columns)."""


def check_leakage(components: Components) -> LeakageReport:
    """Run the look-ahead checks of the configured features on the configured (validated) bars."""
    from cryptotrade.data import check_features, load_bars

    _, bars, _ = load_bars(components.data)
    report = check_features(components.features, bars, seed=components.seed)
    failed = {col for cols in report.offending.values() for col in cols}
    tracking.log_metrics(
        {"check/columns": len(report.columns), "check/offending_columns": len(failed)}
    )
    tracking.log_text(report.format(), "check/report.txt")
    return report


def run(components: Components, context: RunContext) -> dict[str, float]:
    """Check every feature column for look-ahead and print the report.

    Raises:
        LeakageError: A column changes when future bars change (non-zero exit).
    """
    report = check_leakage(components)
    if not report.ok:
        raise LeakageError(report.format())
    print(report.format())
    return {"check/columns": float(len(report.columns))}
