"""What ``conf/data/<option>.yaml`` instantiates to: a source plus how to validate and split it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd


class BarSource(Protocol):
    """Anything that returns a bars frame (see :mod:`cryptotrade.data.market_data`).

    A source whose bars can change between loads for the same settings (a download up to "now")
    also has ``reproducible = False``; the pipeline then never reuses a cached dataset for it.
    """

    def load(self) -> pd.DataFrame:
        """Return the bars frame: UTC open-time index named ``date``, OHLCV float64 columns."""
        ...


class BarValidator(Protocol):
    """Checks a bars frame and repairs it by an explicit policy, or raises naming the rows."""

    def apply(self, bars: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Return the repaired frame and the count of each repair (for the summary and MLflow)."""
        ...


class Splitter(Protocol):
    """Chronological split of ``n`` bars into named, non-overlapping ranges."""

    def split(self, timestamps: Any) -> dict[str, slice]:
        """Return ``{"train": slice, "val": slice, "test": slice}`` over the bar index."""
        ...


@dataclass
class DataSpec:
    """One data option: where bars come from, how they are validated, how they are split.

    Args:
        source: Returns the raw bars frame (ccxt exchange, file, ticks, synthetic market).
        validation: The repair/reject policy every source passes through.
        split: The chronological train/val/test split (walk-forward folds build on it).
        symbol: The market, for option files whose source reads it by interpolation
            (``symbol: ${data.symbol}``) so that ``data.symbol=ETH/USDT`` works as a shorthand.
        max_bars: Keep only the last ``max_bars`` validated bars (``debug=default`` sets it so
            any source runs in seconds); ``None`` keeps them all.
    """

    source: BarSource
    validation: BarValidator
    split: Splitter
    symbol: str | None = None
    max_bars: int | None = None

    def __post_init__(self) -> None:
        if self.max_bars is not None and self.max_bars < 2:
            raise ValueError(f"data.max_bars={self.max_bars} must be >= 2 (or null for all bars)")
