"""Oracles for the scalar market kernels, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from cryptotrade.market import (
    equity_nb,
    fee_nb,
    fill_nb,
    funding_payment_nb,
    liquidation_hit_nb,
    liquidation_price_nb,
    slipped_price_nb,
    target_units_nb,
)
from cryptotrade.market.account import (
    BALANCE,
    F_FEES,
    F_PNL,
    N_ACCOUNT,
    N_TRADE_FIELDS,
    UNITS,
    rebalance_nb,
    reset_account_nb,
)


def test_slippage_bps_and_range() -> None:
    assert slipped_price_nb(100.0, 1.0, 10.0, 0.0, 5.0) == pytest.approx(100.1)
    assert slipped_price_nb(100.0, -1.0, 10.0, 0.0, 5.0) == pytest.approx(99.9)
    # 10% of a 4.0 range on top of 10 bps
    assert slipped_price_nb(100.0, 1.0, 10.0, 0.1, 4.0) == pytest.approx(100.5)
    assert slipped_price_nb(100.0, 0.0, 10.0, 0.1, 4.0) == 100.0


def test_fee_on_notional() -> None:
    assert fee_nb(-2.0, 50_000.0, 0.0004) == pytest.approx(40.0)


def test_fill_averages_entry_and_realises_on_reduce() -> None:
    units, entry, realised = fill_nb(1.0, 100.0, 3.0, 110.0)  # add 2 at 110
    assert (units, entry, realised) == (3.0, pytest.approx(320.0 / 3.0), 0.0)
    units, entry, realised = fill_nb(3.0, 100.0, 1.0, 120.0)  # sell 2 at 120
    assert (units, entry, realised) == (1.0, 100.0, pytest.approx(40.0))
    units, entry, realised = fill_nb(1.0, 100.0, -2.0, 90.0)  # flip to short 2 at 90
    assert (units, entry, realised) == (-2.0, 90.0, pytest.approx(-10.0))
    units, entry, realised = fill_nb(-2.0, 90.0, 0.0, 80.0)  # cover the short
    assert (units, entry, realised) == (0.0, 0.0, pytest.approx(20.0))


def test_funding_sign_by_side() -> None:
    assert funding_payment_nb(2.0, 100.0, 0.0001) == pytest.approx(0.02)  # long pays
    assert funding_payment_nb(-2.0, 100.0, 0.0001) == pytest.approx(-0.02)  # short receives
    assert funding_payment_nb(2.0, 100.0, -0.0001) == pytest.approx(-0.02)  # long receives


def test_liquidation_price_long_and_short() -> None:
    # 10x long of 1000 units at 100 with 10,000 margin, 0.5% maintenance
    p = liquidation_price_nb(1000.0, 100.0, 10_000.0, 0.005)
    assert p == pytest.approx(90_000.0 / 995.0)
    assert equity_nb(10_000.0, 1000.0, 100.0, p) == pytest.approx(0.005 * 1000.0 * p)
    q = liquidation_price_nb(-1000.0, 100.0, 10_000.0, 0.005)
    assert q == pytest.approx(110_000.0 / 1005.0)
    assert equity_nb(10_000.0, -1000.0, 100.0, q) == pytest.approx(0.005 * 1000.0 * q)
    assert np.isnan(liquidation_price_nb(0.0, 0.0, 10_000.0, 0.005))


def test_liquidation_hit_touch_and_gap() -> None:
    assert liquidation_hit_nb(1.0, 90.0, 95.0, 89.0, 96.0) == (True, 90.0)  # touched
    assert liquidation_hit_nb(1.0, 90.0, 85.0, 84.0, 96.0) == (True, 85.0)  # gapped through
    assert liquidation_hit_nb(1.0, 90.0, 95.0, 90.5, 96.0)[0] is False
    assert liquidation_hit_nb(-1.0, 110.0, 105.0, 100.0, 111.0) == (True, 110.0)
    assert liquidation_hit_nb(1.0, -5.0, 95.0, 0.01, 96.0)[0] is False  # unliquidatable long


def test_target_units() -> None:
    assert target_units_nb(-1.0, 3.0, 10_000.0, 100.0) == pytest.approx(-300.0)


def test_rebalance_round_trip_books_trade() -> None:
    st = np.zeros((2, N_ACCOUNT))
    reset_account_nb(st, 1, 1000.0)
    trades = np.zeros((2, 3, N_TRADE_FIELDS))
    fee, n, opened = rebalance_nb(st, 1, 10.0, 100.0, 0.001, 1, trades, 0)
    assert (fee, n, opened) == (pytest.approx(1.0), 0, True)
    fee, n, opened = rebalance_nb(st, 1, 0.0, 110.0, 0.001, 2, trades, 0)
    assert (fee, n, opened) == (pytest.approx(1.1), 1, False)
    assert st[1, UNITS] == 0.0
    assert st[1, BALANCE] == pytest.approx(1000.0 + 100.0 - 2.1)
    assert trades[1, 0, F_FEES] == pytest.approx(2.1)
    assert trades[1, 0, F_PNL] == pytest.approx(97.9)
    assert not st[0].any() and not trades[0].any()  # other rows untouched
