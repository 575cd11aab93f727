"""The prepared-dataset containers every later stage consumes.

The contract between the data layer and the rest of the product:

* A *bars frame* (``pd.DataFrame``) is what a source returns and validation checks: a
  ``DatetimeIndex`` named ``date``, tz-aware UTC, equal to each bar's **open** time, strictly
  increasing; float64 columns ``open, high, low, close, volume``; optionally ``funding_rate``
  (the perpetual funding rate settled at that bar's open time, 0.0 where there is no settlement),
  ``mark_price`` (the exchange mark price at that bar's close, finite and > 0; see
  :mod:`cryptotrade.data.sources.mark`), with it optionally ``mark_high``/``mark_low`` (the
  highest/lowest mark during the bar, from mark-price candles; the bar's ``mark_price`` where
  its candle is missing) and ``regime`` (integer regime label of a synthetic market).
* A :class:`MarketData` is one split of a prepared dataset as contiguous numpy arrays. Prices stay
  float64 so accounting is exact to the cent; features are float32, causal (row ``t`` uses bars
  ``<= t`` only) and already normalised with statistics fit on the training split.
* A :class:`Dataset` holds the train/val/test splits plus what is needed to reproduce them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
# the optional mark columns of a bars frame and arrays of a MarketData (see the module docstring)
MARK_COLUMNS = ("mark_price", "mark_high", "mark_low")


@dataclass(frozen=True)
class MarketData:
    """One chronological split of a prepared dataset.

    Attributes:
        name: Split name (``train``, ``val``, ``test`` or ``fold<k>/train`` ...).
        timestamps: ``datetime64[ns]`` bar open times (UTC), shape ``(T,)``.
        open: Open prices, float64, shape ``(T,)``.
        high: High prices, float64, shape ``(T,)``.
        low: Low prices, float64, shape ``(T,)``.
        close: Close prices, float64, shape ``(T,)``.
        volume: Volume, float64, shape ``(T,)``.
        features: Normalised causal features, float32, shape ``(T, F)``.
        feature_names: Column names of ``features``.
        funding_rate: Funding rate settled at each bar's open, float64 ``(T,)``; zeros if none.
        regime: Regime label per bar (synthetic markets), int8 ``(T,)``, or ``None``.
        mark_price: Exchange mark price at each bar's close, float64 ``(T,)``, or ``None``
            (absent: funding and liquidation use the traded prices: funding at the traded
            open, liquidation on the traded candle's low/high). The env values funding at the
            mark at the bar's open (the previous bar's close).
        mark_high: Highest mark during each bar (the mark-price candle's high), float64
            ``(T,)``, or ``None`` (no mark candles). Given with ``mark_low`` and ``mark_price``.
        mark_low: Lowest mark during each bar (the mark-price candle's low), or ``None``.
            With both, the env liquidates a long when the mark's own low reaches its
            liquidation price and a short when the mark's own high does; without them (a mark
            series of closes only) it takes the mark to move linearly between consecutive
            closes, so the bar's mark range is the two closes' (see
            :func:`cryptotrade.env.compiled.price_rows`).
    """

    name: str
    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    funding_rate: np.ndarray
    regime: np.ndarray | None = None
    mark_price: np.ndarray | None = None
    mark_high: np.ndarray | None = None
    mark_low: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.timestamps)
        for attr in ("open", "high", "low", "close", "volume", "funding_rate"):
            arr = getattr(self, attr)
            if arr.shape != (n,):
                raise ValueError(f"MarketData.{attr} has shape {arr.shape}, expected ({n},)")
        for attr in MARK_COLUMNS:
            arr = getattr(self, attr)
            if arr is not None and arr.shape != (n,):
                raise ValueError(f"MarketData.{attr} has shape {arr.shape}, expected ({n},)")
        if (self.mark_high is None) != (self.mark_low is None) or (
            self.mark_high is not None and self.mark_price is None
        ):
            raise ValueError(
                "MarketData.mark_high and mark_low come together, and only with mark_price"
            )
        if self.features.ndim != 2 or self.features.shape[0] != n:
            raise ValueError(
                f"MarketData.features has shape {self.features.shape}, expected ({n}, F)"
            )
        if self.features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"{self.features.shape[1]} feature columns but {len(self.feature_names)} names"
            )

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def num_features(self) -> int:
        """Number of feature columns."""
        return self.features.shape[1]


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset: chronological splits plus what reproduces them.

    Attributes:
        train: Training split (the normaliser was fit on it alone).
        val: Validation split.
        test: Held-out test split.
        fingerprint: Hash of the data config that produced this dataset.
        normaliser: Fitted normalisation statistics, JSON-serialisable.
        meta: Summary for logging: source, rows, date range, repairs, split boundaries.
    """

    train: MarketData
    val: MarketData
    test: MarketData
    fingerprint: str
    normaliser: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def splits(self) -> dict[str, MarketData]:
        """The splits by name, in chronological order."""
        return {"train": self.train, "val": self.val, "test": self.test}
