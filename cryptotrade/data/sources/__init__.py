"""Bar sources: files, exchanges via ccxt, trade dumps; plus the shared funding alignment.

Each source has ``load() -> bars frame`` (see :mod:`cryptotrade.data.market_data`).
"""

from cryptotrade.data.sources.ccxt_source import CcxtSource
from cryptotrade.data.sources.file import FileSource
from cryptotrade.data.sources.funding import align_funding, load_funding
from cryptotrade.data.sources.ticks import TickSource, resample_bars, resample_trades

__all__ = [
    "CcxtSource",
    "FileSource",
    "TickSource",
    "align_funding",
    "load_funding",
    "resample_bars",
    "resample_trades",
]
