"""Searches around the objective (:mod:`~cryptotrade.optimize.objective`): ``optimizer=``.

Every optimizer is a class named by the ``_target_`` of ``conf/optimizer/<option>.yaml`` with a
``run(cfg, output_dir) -> dict[str, float]`` method; the launcher calls :func:`run`, which builds
the configured one and runs it inside the launcher's MLflow run (the parent of a search's child
runs). ``none`` runs the objective once; ``ga`` (:mod:`~cryptotrade.optimize.ga`, DEAP) and
``tune`` (:mod:`~cryptotrade.optimize.tune`, Ray Tune) score candidates on the VALIDATION split
only and evaluate the winner on the test split once. The space, candidates and workers live in
:mod:`~cryptotrade.optimize.space`, :mod:`~cryptotrade.optimize.trial` and
:mod:`~cryptotrade.optimize.workers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig


class Optimizer(Protocol):
    """What an ``optimizer=`` option's ``_target_`` builds."""

    metric: str
    space: dict[str, Any]

    def run(self, cfg: DictConfig, output_dir: Path) -> Mapping[str, float]:
        """Run the search (or the single run) and return the final metrics."""
        ...


class NoSearch:
    """``optimizer=none``: the objective once (train, select on validation, test once).

    Args:
        metric: The metric returned to Hydra sweepers (``-m`` with a sweeper plugin); a
            validation metric, so a sweep selects without seeing the test split.
    """

    def __init__(self, metric: str = "val/sharpe") -> None:
        self.metric = metric
        self.space: dict[str, Any] = {}  # nothing is searched

    def run(self, cfg: DictConfig, output_dir: Path) -> dict[str, float]:
        """``objective(cfg, output_dir)`` (:func:`cryptotrade.optimize.objective.objective`)."""
        from cryptotrade.optimize.objective import objective

        return dict(objective(cfg, output_dir))


def build(cfg: DictConfig) -> Optimizer:
    """The optimizer of ``cfg.optimizer`` (its constructor checks its settings)."""
    from cryptotrade.components import build_optimizer

    optimizer: Optimizer = build_optimizer(cfg)
    return optimizer


def preflight(cfg: DictConfig) -> Optimizer:
    """Check the optimizer's settings and search space against ``cfg`` before any run starts:
    an unknown path, an empty range or a value the config rejects fails here.

    Returns:
        The optimizer, checked.
    """
    from cryptotrade.optimize.space import parse_space

    optimizer = build(cfg)
    if optimizer.space:
        parse_space(optimizer.space, cfg)
    check = getattr(optimizer, "check", None)
    if check is not None:
        check(cfg)
    return optimizer


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Build the configured optimizer and run it (the launcher's ``task=pipeline``)."""
    return dict(build(cfg).run(cfg, output_dir))
