"""``task=data``: prepare (and cache) the configured dataset, then print its summary."""

from __future__ import annotations

from cryptotrade.components import Components
from cryptotrade.tasks.context import RunContext


def run(components: Components, context: RunContext) -> dict[str, float]:
    """Prepare (and cache) the dataset, then print its summary.

    Returns:
        ``data/<split>_rows`` of every split.
    """
    from rich.console import Console
    from rich.pretty import Pretty

    from cryptotrade.optimize.objective import prepare_data

    dataset = prepare_data(components)
    Console().print(Pretty(dataset.meta))
    return {f"data/{name}_rows": float(len(split)) for name, split in dataset.splits.items()}
