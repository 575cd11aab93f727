"""cryptotrade.market: the accounting of fills, fees, slippage, margin, liquidation and funding.

Numba kernels over arrays and small state rows; imports neither gymnasium nor torch, so it can be
used by the env, the backtester and the tests alike.
"""

from cryptotrade.market.kernels import (
    equity_nb,
    fee_nb,
    fill_nb,
    funding_payment_nb,
    liquidation_hit_nb,
    liquidation_price_nb,
    pnl_nb,
    position_value_nb,
    slipped_price_nb,
    target_units_nb,
)
from cryptotrade.market.records import TRADE_DTYPE, trades_to_records

__all__ = [
    "TRADE_DTYPE",
    "equity_nb",
    "fee_nb",
    "fill_nb",
    "funding_payment_nb",
    "liquidation_hit_nb",
    "liquidation_price_nb",
    "pnl_nb",
    "position_value_nb",
    "slipped_price_nb",
    "target_units_nb",
    "trades_to_records",
]
