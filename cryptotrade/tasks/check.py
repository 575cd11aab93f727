"""``task=check``: look-ahead checks of the configured features; fails if any column leaks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from cryptotrade.launch import tracking

if TYPE_CHECKING:
    from cryptotrade.data.leakage import LeakageReport


class LeakageError(RuntimeError):
    """Features use information from the future (``task=check`` found offending columns)."""


def check_leakage(cfg: DictConfig) -> LeakageReport:
    """Run the look-ahead checks of the configured features on the configured (validated) bars."""
    from cryptotrade.components import build
    from cryptotrade.data import check_features, load_bars

    comps = build(cfg, agent=False)
    _, bars, _ = load_bars(comps.data)
    report = check_features(comps.features, bars, seed=cfg.seed)
    failed = {col for cols in report.offending.values() for col in cols}
    tracking.log_metrics(
        {"check/columns": len(report.columns), "check/offending_columns": len(failed)}
    )
    tracking.log_text(report.format(), "check/report.txt")
    return report


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Check every feature column for look-ahead and print the report.

    Raises:
        LeakageError: A column changes when future bars change (non-zero exit).
    """
    report = check_leakage(cfg)
    if not report.ok:
        raise LeakageError(report.format())
    print(report.format())
    return {"check/columns": float(len(report.columns))}
