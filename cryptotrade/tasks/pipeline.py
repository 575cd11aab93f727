"""``task=pipeline`` (the default): data -> train -> test once, or a search around it.

``optimizer=none`` runs :func:`cryptotrade.optimize.objective.objective` once; ``optimizer=ga``
and ``optimizer=tune`` search on the validation split and test the winner once
(:mod:`cryptotrade.optimize`). A configured ``train.curriculum`` trains its stages
(:func:`cryptotrade.tasks.curriculum.train_curriculum`) and needs ``optimizer=none``.
"""

from __future__ import annotations

from cryptotrade import optimize
from cryptotrade.components import Components
from cryptotrade.errors import ConfigError
from cryptotrade.tasks.context import RunContext


def preflight(components: Components, context: RunContext) -> optimize.Optimizer:
    """Build the optimizer and check its settings and search space before any run starts.

    Returns:
        The optimizer (the task runs this one: it is built once).

    Raises:
        ConfigError: A search (``optimizer=ga|tune``) over a ``train.curriculum`` run.
    """
    optimizer = optimize.preflight(context.configs)
    if components.train.curriculum and not isinstance(optimizer, optimize.NoSearch):
        raise ConfigError(
            "train.curriculum runs with optimizer=none: a search trains each candidate in one "
            "stage; drop train.curriculum or choose optimizer=none"
        )
    return optimizer


def run(components: Components, context: RunContext) -> dict[str, float]:
    """Data -> train -> evaluate on the test split, or a search around it (``optimizer=``)."""
    if components.train.curriculum:
        from cryptotrade.optimize.objective import objective
        from cryptotrade.tasks.curriculum import train_curriculum

        return objective(
            context.configs, context.output_dir, components=components, trainer=train_curriculum
        )
    optimizer: optimize.Optimizer = context.prepared
    return dict(optimizer.run(context.configs, context.output_dir, components=components))
