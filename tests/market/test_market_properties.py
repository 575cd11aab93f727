"""Property tests of the accounting: whatever the sequence of fills, nothing is created or lost."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptotrade.market import equity_nb, fill_nb
from cryptotrade.market.account import (
    BALANCE,
    EQUITY,
    F_PNL,
    N_TRADE_FIELDS,
    UNITS,
    mark_nb,
    rebalance_nb,
    reset_account_nb,
)

prices = st.floats(min_value=1.0, max_value=1_000.0, allow_nan=False)
targets = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False).map(lambda x: round(x, 3))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(targets, prices), min_size=1, max_size=30), prices)
def test_realised_plus_open_pnl_equals_cash_flows(fills, last_price) -> None:
    """Fee-free: realised + unrealised PnL = - sum(delta units x fill price) + units x last."""
    units, entry, realised, cash_flow = 0.0, 0.0, 0.0, 0.0
    for target, price in fills:
        cash_flow -= (target - units) * price
        units, entry, r = fill_nb(units, entry, target, price)
        realised += r
    open_pnl = units * (last_price - entry) if units else 0.0
    assert np.isclose(realised + open_pnl, cash_flow + units * last_price, rtol=1e-9, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(targets, prices), min_size=1, max_size=30),
    st.floats(min_value=0.0, max_value=0.01),
)
def test_closed_trades_sum_to_equity_change(fills, fee_rate) -> None:
    """With fees: once flat again, the trade log's net PnL is exactly the equity change."""
    state = np.zeros((1, 10))
    reset_account_nb(state, 0, 10_000.0)
    trades = np.zeros((1, 3, N_TRADE_FIELDS))
    pnl = 0.0
    for t, (target, price) in enumerate([*fills, (0.0, fills[-1][1])]):
        _, n, _ = rebalance_nb(state, 0, target, price, fee_rate, t, trades, 0)
        pnl += trades[0, :n, F_PNL].sum()
    assert state[0, UNITS] == 0.0
    assert np.isclose(state[0, BALANCE] - 10_000.0, pnl, rtol=1e-9, atol=1e-6)
    mark_nb(state, 0, 123.0)
    assert state[0, EQUITY] == equity_nb(state[0, BALANCE], 0.0, 0.0, 123.0)
