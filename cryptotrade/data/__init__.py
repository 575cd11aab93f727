"""Data layer: sources, validation, synthetic markets, causal features, splits, cached datasets."""

from cryptotrade.data.market_data import Dataset, MarketData
from cryptotrade.data.spec import DataSpec

__all__ = ["DataSpec", "Dataset", "MarketData"]
