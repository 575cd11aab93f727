"""The trade log as a structured numpy record array.

Sizes are base units for linear contracts and 1-USD contracts for inverse ones; money (fees,
funding, PnL) is in the margin currency: quote (USDT) for linear, base (BTC) for inverse.
"""

from __future__ import annotations

import numpy as np

from cryptotrade.market.account import (
    F_ENTRY_PRICE,
    F_ENTRY_T,
    F_EXIT_PRICE,
    F_EXIT_T,
    F_FEES,
    F_FUNDING,
    F_LIQUIDATED,
    F_PNL,
    F_SIDE,
    F_SIZE,
    N_TRADE_FIELDS,
)

TRADE_DTYPE = np.dtype(
    [
        ("entry_index", np.int64),  # bar index of the entry fill (into the MarketData)
        ("exit_index", np.int64),  # bar index of the exit fill
        ("entry_time", "datetime64[ns]"),  # open time of the entry bar (fills happen at the open)
        ("exit_time", "datetime64[ns]"),  # open time of the exit bar; the forced close: its bar
        ("side", np.int8),  # +1 long, -1 short
        ("size", np.float64),  # largest absolute position (base units or contracts) in the trade
        ("entry_price", np.float64),  # average entry price incl. slippage
        ("exit_price", np.float64),  # price of the closing fill incl. slippage
        ("fees", np.float64),  # all fees of the trade (entry, exit, liquidation), margin ccy
        ("funding", np.float64),  # funding paid (negative = received), margin currency
        ("pnl", np.float64),  # net PnL = gross realised - fees - funding, margin currency
        ("liquidated", np.bool_),  # closed by liquidation
    ]
)


def trades_to_records(rows: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Convert trade-buffer rows ``(n, N_TRADE_FIELDS)`` into a :data:`TRADE_DTYPE` array.

    Args:
        rows: Float rows written by :func:`cryptotrade.market.account.rebalance_nb` and friends.
        timestamps: Bar open times of the MarketData the indices refer to.

    Returns:
        A structured array with one record per closed trade, in closing order.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, N_TRADE_FIELDS)
    out = np.zeros(len(rows), dtype=TRADE_DTYPE)
    if len(rows) == 0:
        return out
    entry = rows[:, F_ENTRY_T].astype(np.int64)
    exit_ = rows[:, F_EXIT_T].astype(np.int64)
    out["entry_index"] = entry
    out["exit_index"] = exit_
    out["entry_time"] = timestamps[entry]
    out["exit_time"] = timestamps[exit_]
    out["side"] = rows[:, F_SIDE].astype(np.int8)
    out["size"] = rows[:, F_SIZE]
    out["entry_price"] = rows[:, F_ENTRY_PRICE]
    out["exit_price"] = rows[:, F_EXIT_PRICE]
    out["fees"] = rows[:, F_FEES]
    out["funding"] = rows[:, F_FUNDING]
    out["pnl"] = rows[:, F_PNL]
    out["liquidated"] = rows[:, F_LIQUIDATED] > 0.5
    return out
