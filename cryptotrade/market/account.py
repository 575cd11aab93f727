"""The account as a small float64 state vector, and the operations that change it.

vectorbt-style: the state lives in row ``i`` of a 2-D float64 array (one row per environment of
the vectorised env; a single env uses one row), every operation is an ``*_nb`` function, and
business outcomes (a closed trade, a liquidation) are returned as values and written into a
preallocated trade buffer instead of raising. Functions take the whole array and the row index
rather than a row view: inside numba loops a view passed to a call costs two atomic refcount
updates, which made a step several times slower.

State layout (indices into the row; the env appends its own fields after ``N_ACCOUNT``):

=============  ==========================================================================
``BALANCE``    cash + realised PnL - fees - funding (margin currency)
``UNITS``      signed position: base units (linear) or 1-USD contracts (inverse)
``ENTRY``      average entry price of the open position (0 when flat)
``EQUITY``     equity at the last mark (margin currency)
``PEAK``       highest marked equity of the episode
``TR_*``       bookkeeping of the open trade: entry bar, fees, funding, realised PnL, max size
=============  ==========================================================================

The margin currency is the quote currency (USDT) for linear contracts and the base currency (BTC)
for inverse ones; every operation takes the ``inverse`` flag and passes it to the kernels of
:mod:`cryptotrade.market.kernels`, where each formula lives.

A closed trade is one row of ``N_TRADE_FIELDS`` floats in the trade buffer (``F_*`` columns);
:mod:`cryptotrade.market.records` turns the rows into a structured record array.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cryptotrade.market.jit import kernel
from cryptotrade.market.kernels import equity_nb, fee_nb, fill_nb, funding_payment_nb, pnl_nb


class AccountLayout(NamedTuple):
    """Indices of the account fields of a state row (the table above); vectorbt-style, the
    kernels read the module constants below (plain ints numba folds in at compile time)."""

    balance: int
    units: int
    entry: int
    equity: int
    peak: int
    tr_entry_t: int
    tr_fees: int
    tr_funding: int
    tr_pnl: int
    tr_size: int


class TradeLayout(NamedTuple):
    """Columns of a closed-trade row of the trade buffer (``TRADE_DTYPE`` in records.py)."""

    entry_t: int
    exit_t: int
    side: int
    size: int
    entry_price: int
    exit_price: int
    fees: int
    funding: int
    pnl: int
    liquidated: int


ACCOUNT = AccountLayout(*range(len(AccountLayout._fields)))
BALANCE, UNITS, ENTRY, EQUITY, PEAK, TR_ENTRY_T, TR_FEES, TR_FUNDING, TR_PNL, TR_SIZE = ACCOUNT
N_ACCOUNT = len(ACCOUNT)

TRADE = TradeLayout(*range(len(TradeLayout._fields)))
(
    F_ENTRY_T,
    F_EXIT_T,
    F_SIDE,
    F_SIZE,
    F_ENTRY_PRICE,
    F_EXIT_PRICE,
    F_FEES,
    F_FUNDING,
    F_PNL,
    F_LIQUIDATED,
) = TRADE
N_TRADE_FIELDS = len(TRADE)
MAX_TRADES_PER_STEP = 3  # a flip, an intrabar liquidation or the forced close at episode end


@kernel
def reset_account_nb(st: np.ndarray, i: int, cash: float) -> None:
    """Flat account holding ``cash``."""
    st[i, :N_ACCOUNT] = 0.0
    st[i, BALANCE] = cash
    st[i, EQUITY] = cash
    st[i, PEAK] = cash


@kernel
def _open_trade_nb(st: np.ndarray, i: int, t: int, units: float, fee: float) -> None:
    st[i, TR_ENTRY_T] = t
    st[i, TR_FEES] = fee
    st[i, TR_FUNDING] = 0.0
    st[i, TR_PNL] = 0.0
    st[i, TR_SIZE] = abs(units)


@kernel
def _close_trade_nb(
    st: np.ndarray,
    i: int,
    t: int,
    side: float,
    entry: float,
    exit_price: float,
    liquidated: bool,
    trades: np.ndarray,
    n_trades: int,
) -> int:
    row = n_trades  # trades[i, row] is this trade (no row view: views cost refcounts in loops)
    trades[i, row, F_ENTRY_T] = st[i, TR_ENTRY_T]
    trades[i, row, F_EXIT_T] = t
    trades[i, row, F_SIDE] = side
    trades[i, row, F_SIZE] = st[i, TR_SIZE]
    trades[i, row, F_ENTRY_PRICE] = entry
    trades[i, row, F_EXIT_PRICE] = exit_price
    trades[i, row, F_FEES] = st[i, TR_FEES]
    trades[i, row, F_FUNDING] = st[i, TR_FUNDING]
    trades[i, row, F_PNL] = st[i, TR_PNL] - st[i, TR_FEES] - st[i, TR_FUNDING]
    trades[i, row, F_LIQUIDATED] = 1.0 if liquidated else 0.0
    return n_trades + 1


@kernel
def rebalance_nb(
    st: np.ndarray,
    i: int,
    target: float,
    price: float,
    fee_rate: float,
    t: int,
    trades: np.ndarray,
    n_trades: int,
    inverse: bool = False,
) -> tuple[float, int, bool]:
    """Trade the position to ``target`` units at ``price``, paying ``fee_rate`` on the notional.

    Args:
        st: State array ``(n_envs, N_STATE)``; row ``i`` is modified in place.
        i: Row of the account.
        target: Target signed units.
        price: Fill price (slippage already applied).
        fee_rate: Fee rate on traded notional.
        t: Bar index of the fill (recorded in the trade log).
        trades: Trade buffer ``(n_envs, MAX_TRADES_PER_STEP, N_TRADE_FIELDS)``; closed trades
            go to ``trades[i, n_trades]``.
        n_trades: Trades already written for row ``i`` this step.
        inverse: Inverse contract (units are contracts, money is in BTC).

    Returns:
        ``(fee, n_trades, opened)``: the fee paid, the updated trade count and whether a new
        trade was opened (from flat or by crossing zero).
    """
    units, entry = st[i, UNITS], st[i, ENTRY]
    delta = target - units
    if delta == 0.0:
        return 0.0, n_trades, False
    fee = fee_nb(delta, price, fee_rate, inverse)
    new_units, new_entry, realised = fill_nb(units, entry, target, price, inverse)
    st[i, BALANCE] += realised - fee
    st[i, UNITS] = new_units
    st[i, ENTRY] = new_entry
    side = 1.0 if units > 0.0 else -1.0
    if units == 0.0:
        _open_trade_nb(st, i, t, new_units, fee)
        return fee, n_trades, True
    if new_units != 0.0 and (new_units > 0.0) != (units > 0.0):
        # crossing zero: the fee is split between the closed and the new trade by units
        fee_close = fee * abs(units) / abs(delta)
        st[i, TR_FEES] += fee_close
        st[i, TR_PNL] += realised
        n_trades = _close_trade_nb(st, i, t, side, entry, price, False, trades, n_trades)
        _open_trade_nb(st, i, t, new_units, fee - fee_close)
        return fee, n_trades, True
    st[i, TR_FEES] += fee
    st[i, TR_PNL] += realised
    st[i, TR_SIZE] = max(st[i, TR_SIZE], abs(new_units))
    if new_units == 0.0:
        n_trades = _close_trade_nb(st, i, t, side, entry, price, False, trades, n_trades)
    return fee, n_trades, False


@kernel
def liquidate_nb(
    st: np.ndarray,
    i: int,
    price: float,
    fee_rate: float,
    t: int,
    trades: np.ndarray,
    n_trades: int,
    inverse: bool = False,
) -> tuple[float, int]:
    """Close the whole position at the liquidation ``price`` with the liquidation fee.

    The balance is floored at 0: a loss beyond the margin is absorbed by the exchange's
    insurance fund, as on Binance/BitMEX, so equity never goes negative through liquidation;
    the absorbed part is not booked as the trade's loss either, so the trade log's net PnL
    stays equal to the account's equity change.

    Returns:
        ``(fee, n_trades)``.
    """
    units, entry = st[i, UNITS], st[i, ENTRY]
    realised = pnl_nb(units, entry, price, inverse)
    fee = fee_nb(units, price, fee_rate, inverse)
    balance = st[i, BALANCE] + realised - fee
    absorbed = max(-balance, 0.0)  # covered by the insurance fund
    st[i, BALANCE] = balance + absorbed
    st[i, TR_FEES] += fee
    st[i, TR_PNL] += realised + absorbed
    side = 1.0 if units > 0.0 else -1.0
    n_trades = _close_trade_nb(st, i, t, side, entry, price, True, trades, n_trades)
    st[i, UNITS] = 0.0
    st[i, ENTRY] = 0.0
    return fee, n_trades


@kernel
def apply_funding_nb(
    st: np.ndarray, i: int, mark_price: float, rate: float, inverse: bool = False
) -> float:
    """Settle funding on the open position; returns the amount paid (negative = received)."""
    pay = funding_payment_nb(st[i, UNITS], mark_price, rate, inverse)
    st[i, BALANCE] -= pay
    st[i, TR_FUNDING] += pay
    return pay


@kernel
def mark_nb(st: np.ndarray, i: int, price: float, inverse: bool = False) -> float:
    """Mark the account to ``price``; updates ``EQUITY`` and ``PEAK`` and returns equity."""
    eq = equity_nb(st[i, BALANCE], st[i, UNITS], st[i, ENTRY], price, inverse)
    st[i, EQUITY] = eq
    if eq > st[i, PEAK]:
        st[i, PEAK] = eq
    return eq
