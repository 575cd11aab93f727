"""Shared helpers of the sources/validation tests (not a test module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".." / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a real data file in ../shared/data, or skip the test if it is absent."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data file {path} is absent (the shared data folder is not mounted)")
    return path


def make_bars(
    n: int = 6, start: str = "2024-01-01", freq: str = "1h", **extra: Any
) -> pd.DataFrame:
    """A clean hand-made bars frame: close rises by 1 per bar, open = previous close."""
    grid = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    index = pd.to_datetime(grid.as_unit("ns").asi8, unit="ns", utc=True).rename(
        "date"
    )  # no freq attribute
    close = 100.0 + np.arange(1, n + 1, dtype=np.float64)
    open_ = close - 1.0
    data = {
        "open": open_,
        "high": close + 0.5,
        "low": open_ - 0.5,
        "close": close,
        "volume": np.full(n, 10.0),
    }
    data.update({k: np.asarray(v, dtype=np.float64) for k, v in extra.items()})
    return pd.DataFrame(data, index=index)


def data_option_node(option: str, group_key: str) -> Any:
    """Instantiate one sub-node (``source`` or ``validation``) of ``data=<option>``.

    Composed by Hydra from the real config tree, so schemas and interpolations apply as in a run.
    """
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from cryptotrade.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"data={option}"])
    return instantiate(cfg.data[group_key])
