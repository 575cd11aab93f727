"""``task=data``: prepare (and cache) the configured dataset, then print its summary."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Prepare (and cache) the dataset, then print its summary.

    Returns:
        ``data/<split>_rows`` of every split.
    """
    from rich.console import Console
    from rich.pretty import Pretty

    from cryptotrade.optimize.objective import prepare_data

    dataset = prepare_data(cfg)
    Console().print(Pretty(dataset.meta))
    return {f"data/{name}_rows": float(len(split)) for name, split in dataset.splits.items()}
