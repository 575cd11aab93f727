"""Data layer: sources, validation, synthetic markets, causal features, splits, cached datasets.

Light at import time: the numba/pandas-heavy modules load on first use of their names
(``cryptotrade.data.build_dataset``, ``cryptotrade.data.leakage`` ...).
"""

from __future__ import annotations

import importlib
from typing import Any

from cryptotrade.data.market_data import Dataset, MarketData
from cryptotrade.data.spec import DataSpec

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    "build_dataset": "dataset",
    "build_folds": "dataset",
    "load_bars": "dataset",
    "FeatureSet": "features",
    "Normaliser": "normalise",
    "ChronoSplit": "splits",
    "WalkForward": "splits",
    "RegimeModel": "synthetic",
    "SyntheticSource": "synthetic",
    "check_features": "leakage",
    "LeakageReport": "leakage",
}
_SUBMODULES = (
    "dataset",
    "features",
    "indicators",
    "leakage",
    "mtf",
    "normalise",
    "rolling",
    "splits",
    "synthetic",
    "volume_profile",
)

__all__ = ["DataSpec", "Dataset", "MarketData", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
