"""Searches around the objective (:mod:`~cryptotrade.optimize.objective`): ``optimizer=``.

Every optimizer is a class named by the ``_target_`` of ``conf/optimizer/<option>.yaml`` with a
``run(configs, output_dir, *, components) -> dict[str, float]`` method (``configs``: the run's
:class:`~cryptotrade.optimize.derive.ConfigDeriver`, which derives every candidate's config);
``task=pipeline`` builds the configured one (:func:`preflight`, before the run opens) and runs it
inside the launcher's MLflow run (the parent of a search's child runs). ``none`` runs the
objective once; ``ga`` (:mod:`~cryptotrade.optimize.ga`, DEAP) and ``tune``
(:mod:`~cryptotrade.optimize.tune`, Ray Tune) score candidates on the VALIDATION split only and
evaluate the winner on the test split once. The space, candidates and workers live in
:mod:`~cryptotrade.optimize.space`, :mod:`~cryptotrade.optimize.trial` and
:mod:`~cryptotrade.optimize.workers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cryptotrade.components import Components
    from cryptotrade.optimize.derive import ConfigDeriver


class Optimizer(Protocol):
    """What an ``optimizer=`` option's ``_target_`` builds."""

    metric: str
    space: dict[str, Any]

    def run(
        self, configs: ConfigDeriver, output_dir: Path, *, components: Components | None = None
    ) -> Mapping[str, float]:
        """Run the search (or the single run) and return the final metrics.

        ``components`` are those of the base config of ``configs`` when the launcher built
        them: the single run uses them, a search builds every candidate's (and the winner's)
        own.
        """
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

    def run(
        self, configs: ConfigDeriver, output_dir: Path, *, components: Components | None = None
    ) -> dict[str, float]:
        """``objective(configs, output_dir)`` (:func:`cryptotrade.optimize.objective.objective`)."""
        from cryptotrade.optimize.objective import objective

        return dict(objective(configs, output_dir, components=components))


def build(configs: ConfigDeriver) -> Optimizer:
    """The optimizer of the config's ``optimizer`` node (its constructor checks its settings)."""
    optimizer: Optimizer = configs.build_optimizer()
    return optimizer


def preflight(configs: ConfigDeriver) -> Optimizer:
    """Check the optimizer's settings and search space against the config before any run starts:
    an unknown path, an empty range or a value the config rejects fails here, and so does a
    search's ``ray.address`` that cannot work (a Ray Client ``ray://`` address).

    Returns:
        The optimizer, checked.
    """
    from cryptotrade.optimize.space import parse_space
    from cryptotrade.optimize.workers import check_ray_address

    optimizer = build(configs)
    if not isinstance(optimizer, NoSearch):
        check_ray_address(configs.settings.ray.address)
    if optimizer.space:
        parse_space(optimizer.space, configs)
    check = getattr(optimizer, "check", None)
    if check is not None:
        check(configs)
    return optimizer
