"""``task=pipeline`` (the default): data -> train -> test once, or a search around it.

``optimizer=none`` runs :func:`cryptotrade.optimize.objective.objective` once; ``optimizer=ga``
and ``optimizer=tune`` search on the validation split and test the winner once
(:mod:`cryptotrade.optimize`). A configured ``train.curriculum`` trains its stages
(:func:`cryptotrade.tasks.curriculum.train_curriculum`) and needs ``optimizer=none``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from cryptotrade import optimize
from cryptotrade.errors import ConfigError


def preflight(cfg: DictConfig) -> None:
    """Check the optimizer's settings and search space before any run starts.

    Raises:
        ConfigError: A search (``optimizer=ga|tune``) over a ``train.curriculum`` run.
    """
    optimizer = optimize.preflight(cfg)
    if cfg.train.curriculum and not isinstance(optimizer, optimize.NoSearch):
        raise ConfigError(
            "train.curriculum runs with optimizer=none: a search trains each candidate in one "
            "stage; drop train.curriculum or choose optimizer=none"
        )


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Data -> train -> evaluate on the test split, or a search around it (``optimizer=``)."""
    if cfg.train.curriculum:
        from cryptotrade.optimize.objective import objective
        from cryptotrade.tasks.curriculum import train_curriculum

        return objective(cfg, output_dir, trainer=train_curriculum)
    return optimize.run(cfg, output_dir)
