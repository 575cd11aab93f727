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


def test_inverse_value_fee_funding_and_pnl_in_btc() -> None:
    from cryptotrade.market import pnl_nb, position_value_nb

    assert position_value_nb(-20_000.0, 8_000.0, True) == -2.5  # 20,000 USD contracts = 2.5 BTC
    assert fee_nb(-20_000.0, 8_000.0, 0.00075, True) == pytest.approx(0.001875)
    assert funding_payment_nb(20_000.0, 8_000.0, 0.0001, True) == pytest.approx(0.00025)
    # contracts x (1/entry - 1/exit): a long of 10,000 from 10,000 to 12,500 earns 0.2 BTC
    assert pnl_nb(10_000.0, 10_000.0, 12_500.0, True) == pytest.approx(0.2)
    assert equity_nb(1.0, 10_000.0, 10_000.0, 12_500.0, True) == pytest.approx(1.2)
    assert equity_nb(1.0, 0.0, 0.0, 12_500.0, True) == 1.0  # flat: no 1 / 0
    assert target_units_nb(-0.5, 4.0, 1.5, 10_000.0, True) == pytest.approx(-30_000.0)


def test_inverse_fill_averages_entry_harmonically_and_realises_in_btc() -> None:
    units, entry, realised = fill_nb(5_000.0, 10_000.0, 10_000.0, 12_500.0, True)
    assert (units, realised) == (10_000.0, 0.0)
    assert entry == pytest.approx(10_000 / (0.5 + 0.4))  # 10,000 contracts worth 0.9 BTC at entry
    units, entry, realised = fill_nb(10_000.0, 10_000.0, 2_500.0, 12_500.0, True)
    assert (units, entry) == (2_500.0, 10_000.0)
    assert realised == pytest.approx(7_500 * (1 / 10_000 - 1 / 12_500))


@pytest.mark.parametrize("leverage", [2.0, 10.0, 50.0])
def test_inverse_liquidation_price_is_bitmex_formula(leverage: float) -> None:
    # isolated margin |contracts| / (entry x L): BitMEX long entry / (1 + 1/L - mm),
    # short entry / (1 - 1/L + mm) (https://www.bitmex.com/app/liquidationExamples)
    entry, mmr, contracts = 8_000.0, 0.005, 40_000.0
    margin = contracts / (entry * leverage)
    long_ = liquidation_price_nb(contracts, entry, margin, mmr, True)
    short = liquidation_price_nb(-contracts, entry, margin, mmr, True)
    assert long_ == pytest.approx(entry / (1 + 1 / leverage - mmr), rel=1e-12)
    assert short == pytest.approx(entry / (1 - 1 / leverage + mmr), rel=1e-12)
    # at that price equity equals the maintenance margin on the entry value
    for units, p in ((contracts, long_), (-contracts, short)):
        eq = equity_nb(margin, units, entry, p, True)
        assert eq == pytest.approx(mmr * contracts / entry, rel=1e-9)


def test_inverse_1x_short_is_liquidated_only_by_a_200_fold_rise() -> None:
    # 1 BTC backing a short of 1 BTC's value: 8,000 / (8,000 x 1.005 / 8,000 - 1) = 1.6M
    assert liquidation_price_nb(-8_000.0, 8_000.0, 1.0, 0.005, True) == pytest.approx(1.6e6)
    # backed by its value plus the maintenance margin: never
    assert liquidation_price_nb(-8_000.0, 8_000.0, 1.005, 0.005, True) == np.inf
