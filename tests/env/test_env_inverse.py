"""Inverse (coin-margined) contracts and mark prices through TradingEnv, hand-computed.

Inverse: 1-USD contracts, money in BTC, PnL ``contracts x (1/entry - 1/exit)``; equity is pinned
to the satoshi (1e-8 BTC). Mark prices: funding and liquidation follow the mark, fills the trade.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_episode
from env_testdata import bars, random_walk

from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvFactory, EnvSettings, TradingEnv, WeightedReward

HOLD, LONG, SHORT, CLOSE = 0, 1, 2, 3
SAT = 1e-8


def sats(x: float) -> int:
    """Amount in satoshis, rounded."""
    return round(x / SAT)


def make_env(data: MarketData, **kw) -> TradingEnv:
    base = dict(
        window=1,
        action_mode="discrete4",
        contract="inverse",
        initial_cash=1.0,  # BTC
        taker_fee=0.00075,  # BitMEX XBTUSD taker
        slippage_bps=0.0,
        leverage=1.0,
        maintenance_margin=0.0,
        episode_length=None,
    )
    base.update(kw)
    env = TradingEnv(data, WeightedReward(), EnvSettings(**base), evaluation=True)
    env.reset(seed=0)
    return env


def with_mark(data: MarketData, mark: list[float]) -> MarketData:
    import dataclasses

    return dataclasses.replace(data, mark_price=np.asarray(mark, dtype=np.float64))


def test_inverse_long_round_trip_to_the_satoshi() -> None:
    env = make_env(bars([10_000, 10_000, 12_000, 12_500], [10_000, 10_500, 12_500, 12_500]))
    _, _, _, _, info = env.step(LONG)
    # 1 BTC at 1x buys 1 BTC x 10,000 = 10,000 contracts at the open of bar 1;
    # fee 10,000 / 10,000 x 0.075% = 0.00075 BTC; marked at 10,500:
    # 0.99925 + 10,000 x (1/10,000 - 1/10,500) = 0.99925 + 0.047619047...
    assert info["units"] == 10_000.0
    assert sats(info["equity"]) == sats(0.99925 + 1.0 - 10_000 / 10_500) == 104686905
    assert info["equity_quote"] == pytest.approx(info["equity"] * 10_500)
    assert info["position"] == pytest.approx((10_000 / 10_500) / info["equity"])
    _, _, _, _, info = env.step(CLOSE)
    # sell 10,000 contracts at 12,000: PnL 10,000 x (1/10,000 - 1/12,000) = 0.16666667 BTC,
    # fee 10,000 / 12,000 x 0.075% = 0.000625 BTC
    assert sats(info["equity"]) == sats(0.99925 + 1.0 / 6.0 - 0.000625) == 116529167
    trade = env.trades[0]
    assert trade["size"] == 10_000.0 and trade["side"] == 1
    assert sats(trade["fees"]) == 137500  # 0.00075 + 0.000625 BTC
    assert sats(trade["pnl"]) == sats(info["equity"] - 1.0)
    assert env.equity_quote == pytest.approx(env.equity * 12_500)


def test_inverse_short_round_trip_with_slippage() -> None:
    env = make_env(
        bars([10_000, 10_000, 8_000, 8_000], [10_000, 9_000, 8_000, 8_000]), slippage_bps=10.0
    )
    env.step(SHORT)  # sell at 9,990: 9,990 contracts (worth 1 BTC there), fee 0.00075 BTC
    _, _, _, _, info = env.step(CLOSE)  # buy back at 8,008
    contracts = -9_990.0
    pnl = contracts * (1 / 9_990 - 1 / 8_008)  # = -1 + 9,990 / 8,008 = 0.24750250 BTC
    fees = 0.00075 + 9_990 / 8_008 * 0.00075
    assert sats(info["equity"]) == sats(1.0 + pnl - fees) == 124581687
    assert env.trades[0]["entry_price"] == pytest.approx(9_990.0)
    assert env.trades[0]["exit_price"] == pytest.approx(8_008.0)


def test_adding_to_an_inverse_position_averages_entry_harmonically() -> None:
    # buy_sell_hold with 2 levels: 0.5 BTC of contracts at 10,000, then more at 12,500
    data = bars([10_000, 10_000, 12_500, 12_500, 12_500], [10_000, 12_500, 12_500, 12_500, 12_500])
    env = make_env(data, action_mode="buy_sell_hold", inventory_levels=2, taker_fee=0.0)
    env.step(1)  # 0.5 x 1 BTC x 10,000 = 5,000 contracts
    _, _, _, _, info = env.step(1)  # to 1.0 x equity x 12,500 contracts
    equity_before = 1.0 + 5_000 * (1 / 10_000 - 1 / 12_500)  # 1.1 BTC at the second fill
    contracts = equity_before * 12_500
    assert info["units"] == pytest.approx(contracts)
    # entry = contracts / (5,000/10,000 + (contracts - 5,000)/12,500), so the PnL of the sum is
    # the sum of the PnLs
    entry = contracts / (0.5 + (contracts - 5_000) / 12_500)
    assert env._state[0, 2] == pytest.approx(entry, rel=1e-15)
    assert sats(info["equity"]) == sats(equity_before) == 110000000


def test_inverse_funding_in_btc_at_the_traded_open_or_the_mark() -> None:
    data = bars([10_000] * 4, [10_000] * 4, funding=[0, 0, 0.0001, 0])
    env = make_env(data, taker_fee=0.0)
    env.step(LONG)  # 10,000 contracts
    _, _, _, _, info = env.step(HOLD)  # longs pay 10,000 / 10,000 x 0.01% = 0.0001 BTC
    assert sats(info["equity"]) == sats(1.0 - 0.0001) == 99990000
    env = make_env(data, taker_fee=0.0, contract="inverse")
    env.step(SHORT)
    assert sats(env.step(HOLD)[4]["equity"]) == 100010000  # shorts receive it
    # with a mark series, funding at bar 2's open is valued at the mark then (bar 1's close mark)
    env = make_env(with_mark(data, [10_000, 8_000, 10_000, 10_000]), taker_fee=0.0)
    env.step(LONG)
    _, _, _, _, info = env.step(HOLD)
    assert sats(info["equity"]) == sats(1.0 - 10_000 / 8_000 * 0.0001) == 99987500
    env.step(CLOSE)
    assert sats(env.trades[0]["funding"]) == 12500


def test_inverse_long_liquidation_at_bitmex_price() -> None:
    # 10x long: 100,000 contracts at 10,000 on 1 BTC; BitMEX: entry / (1 + 1/L - mmr)
    # = 10,000 / 1.095 = 9,132.42; bar 2's low 9,100 reaches it
    data = bars(
        [10_000, 10_000, 9_900, 9_500],
        [10_000, 9_950, 9_500, 9_500],
        low=[10_000, 9_900, 9_100, 9_500],
    )
    env = make_env(
        data, taker_fee=0.0, leverage=10.0, maintenance_margin=0.005, liquidation_fee=0.002
    )
    env.step(LONG)
    _, _, term, _, info = env.step(HOLD)
    p_liq = 10_000 / 1.095
    trade = env.trades[0]
    assert term and trade["liquidated"] and trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)
    # left: the maintenance margin 0.5% x 100,000 / 10,000 = 0.05 BTC minus the liquidation fee
    # 0.2% x 100,000 / p_liq = 0.0219 BTC
    assert sats(info["equity"]) == sats(0.05 - 0.002 * 100_000 / p_liq) == 2810000
    assert sats(trade["pnl"]) == sats(info["equity"] - 1.0)


def test_inverse_short_liquidation_and_a_1x_short_surviving_a_9x_rise() -> None:
    # 5x short: -50,000 contracts; BitMEX: entry / (1 - 1/L + mmr) = 10,000 / 0.805 = 12,422.36
    data = bars(
        [10_000, 10_000, 10_100, 10_100],
        [10_000, 10_100, 12_000, 12_000],
        high=[10_000, 10_200, 12_500, 12_000],
    )
    env = make_env(data, taker_fee=0.0, leverage=5.0, maintenance_margin=0.005, liquidation_fee=0.0)
    env.step(SHORT)
    _, _, term, _, info = env.step(HOLD)
    assert term and env.trades[0]["exit_price"] == pytest.approx(10_000 / 0.805, rel=1e-12)
    assert sats(info["equity"]) == sats(0.005 * 50_000 / 10_000) == 2500000
    # a 1x short is backed by its own value in BTC: only a 200-fold rise would liquidate it
    env = make_env(
        bars([10_000] * 3, [10_000, 50_000, 90_000], high=[10_000, 80_000, 99_000]),
        taker_fee=0.0,
        maintenance_margin=0.005,
    )
    env.step(SHORT)
    _, _, term, trunc, info = env.step(HOLD)
    assert not term and trunc and not env.trades[0]["liquidated"]
    # -10,000 x (1/10,000 - 1/90,000) = -0.8889 BTC: worth 0.1111 BTC x 90,000 = 10,000 USD
    assert info["equity_quote"] == pytest.approx(10_000.0, abs=1e-6)


@pytest.mark.parametrize("contract", ["linear", "inverse"])
def test_liquidation_follows_the_mark_not_the_traded_wick(contract: str) -> None:
    # 10x long at 10,000; the traded low wicks to 9,000 (through the liquidation price ~9,050 /
    # 9,132) but the mark only dips to 9,800: no liquidation. Next bar the mark falls to 9,000.
    data = bars(
        [10_000] * 5,
        [10_000, 10_000, 9_900, 9_900, 9_900],
        low=[10_000, 10_000, 9_000, 9_850, 9_850],
    )
    cash = 1.0 if contract == "inverse" else 10_000.0
    kw = dict(
        contract=contract, initial_cash=cash, taker_fee=0.0, leverage=10.0, maintenance_margin=0.005
    )
    traded = make_env(data, **kw)
    traded.step(LONG)
    assert traded.step(HOLD)[2]  # without a mark series the wick liquidates
    marked = make_env(with_mark(data, [10_000, 10_000, 9_800, 9_000, 9_900]), **kw)
    marked.step(LONG)
    _, _, term, _, _ = marked.step(HOLD)
    assert not term
    _, _, term, _, _ = marked.step(HOLD)  # the mark moves 9,800 -> 9,000 through bar 3
    trade = marked.trades[0]
    assert term and trade["liquidated"] and trade["exit_index"] == 3
    p_liq = 10_000 / 1.095 if contract == "inverse" else 90_000 / 9.95
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)  # not the traded price


@pytest.mark.parametrize("mode", ["discrete3", "buy_sell_hold", "continuous"])
@pytest.mark.parametrize("seed", [0, 1])
def test_inverse_trade_log_accounts_for_every_satoshi(mode: str, seed: int) -> None:
    settings = EnvSettings(
        window=4,
        action_mode=mode,
        contract="inverse",
        initial_cash=2.0,
        leverage=2.0,
        inventory_levels=3,
        taker_fee=0.0005,
        slippage_bps=3.0,
        slippage_range=0.1,
        episode_length=None,
        min_trade=0.0,
    )
    data = random_walk(300, seed=seed)
    data = with_mark(
        data, list(data.close * np.exp(np.random.default_rng(seed).normal(0, 1e-3, len(data))))
    )
    env = TradingEnv(data, WeightedReward(), settings, evaluation=True)
    env.action_space.seed(seed)
    info = run_episode(env, lambda *_: env.action_space.sample(), seed=seed).info
    trades = env.trades
    assert len(trades) > 5 and not trades["liquidated"].any() and info["units"] == 0.0
    assert abs((info["equity"] - 2.0) - trades["pnl"].sum()) < 1e-10


@pytest.mark.parametrize("mode", ["discrete3", "continuous"])
def test_native_vecenv_equals_dummy_for_inverse_with_marks(mode: str) -> None:
    data = random_walk(400, seed=3)
    data = with_mark(data, list(data.close * 1.001))
    kw = dict(
        window=5,
        action_mode=mode,
        contract="inverse",
        initial_cash=1.0,
        episode_length=30,
        leverage=20.0,
        maintenance_margin=0.01,
        n_envs=4,
    )
    native = EnvFactory(**kw, vectorized=True).make_vec(
        data, WeightedReward(drawdown=0.1, benchmark=0.5), seed=5
    )
    dummy = EnvFactory(**kw, vectorized=False).make_vec(
        data, WeightedReward(drawdown=0.1, benchmark=0.5), seed=5
    )
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    native.action_space.seed(0)
    dones = 0
    for _ in range(150):
        actions = np.array([native.action_space.sample() for _ in range(4)])
        obs_n, rew_n, done_n, _ = native.step(actions)
        obs_d, rew_d, done_d, _ = dummy.step(actions)
        np.testing.assert_array_equal(obs_n, obs_d)
        np.testing.assert_array_equal(rew_n, rew_d)
        np.testing.assert_array_equal(done_n, done_d)
        dones += int(done_n.sum())
    assert dones > 4
