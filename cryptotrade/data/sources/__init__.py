"""Bar sources: files, exchanges via ccxt, trade dumps; plus the shared funding alignment.

Each source has ``load() -> bars frame`` (see :mod:`cryptotrade.data.market_data`).
"""

from cryptotrade.data.sources.ccxt_source import CcxtSource
from cryptotrade.data.sources.file import FileSource
from cryptotrade.data.sources.funding import align_funding, load_funding

__all__ = ["CcxtSource", "FileSource", "align_funding", "load_funding"]
