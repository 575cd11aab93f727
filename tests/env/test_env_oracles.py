"""The market model through TradingEnv on tiny price paths, hand-computed to the cent."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_episode
from env_testdata import bars

from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward

HOLD, LONG, SHORT, CLOSE = 0, 1, 2, 3
CENT = 0.005


def make_env(data, **kw) -> TradingEnv:
    base = dict(
        window=1,
        action_mode="discrete4",
        taker_fee=0.001,
        slippage_bps=10.0,
        leverage=1.0,
        maintenance_margin=0.0,
        funding=True,
        episode_length=None,
    )
    base.update(kw)
    env = TradingEnv(data, WeightedReward(), EnvSettings(**base), evaluation=True)
    env.reset(seed=0)
    return env


def test_long_round_trip_fees_and_slippage() -> None:
    env = make_env(bars([100, 100, 110, 120], [100, 105, 115, 120]))
    _, _, _, _, info = env.step(LONG)
    # fill at the open of bar 1 plus 10 bps: 100.1; units = 10,000 / 100.1; fee 0.1% of 10,000
    units = 10_000 / 100.1
    assert info["units"] == pytest.approx(units)
    assert info["equity"] == pytest.approx(9990.0 + units * (105 - 100.1), abs=CENT)
    assert round(info["equity"], 2) == 10479.51
    _, _, term, trunc, info = env.step(CLOSE)
    # sell at 110 - 10 bps = 109.89; fee 0.1% of the exit notional
    exit_fee = units * 109.89 * 0.001
    assert round(exit_fee, 2) == 10.98
    assert round(info["equity"], 2) == round(9990.0 + units * (109.89 - 100.1) - exit_fee, 2)
    assert round(info["equity"], 2) == 10957.04
    assert not term and not trunc
    trade = env.trades[0]
    assert (trade["side"], trade["entry_index"], trade["exit_index"]) == (1, 1, 2)
    assert trade["entry_price"] == pytest.approx(100.1)
    assert trade["exit_price"] == pytest.approx(109.89)
    assert round(trade["fees"], 2) == 20.98
    assert round(trade["pnl"], 2) == 957.04


def test_short_round_trip() -> None:
    env = make_env(bars([100, 100, 90, 95], [100, 95, 92, 95]))
    env.step(SHORT)  # sell at 99.9
    _, _, _, _, info = env.step(CLOSE)  # buy back at 90.09
    units = 10_000 / 99.9
    expected = 10_000 - 10.0 + units * (99.9 - 90.09) - units * 90.09 * 0.001
    assert round(info["equity"], 2) == round(expected, 2)
    assert round(env.trades[0]["pnl"], 2) == round(expected - 10_000, 2)
    assert env.trades[0]["side"] == -1


def test_funding_charged_to_long_and_paid_to_short() -> None:
    data = bars([100, 100, 100, 100], [100, 100, 100, 100], funding=[0, 0, 0.001, 0])
    for action, sign in ((LONG, -1), (SHORT, +1)):
        env = make_env(data, taker_fee=0.0, slippage_bps=0.0)
        env.step(action)  # 100 units at 100
        _, _, _, _, info = env.step(HOLD)  # funding at the open of bar 2: 100 * 100 * 0.1% = 10
        assert round(info["equity"], 2) == 10_000 + sign * 10.0
        assert info["reward/funding"] == 0.0  # weight 0 in the default WeightedReward
    env = make_env(data, taker_fee=0.0, slippage_bps=0.0, funding=False)
    env.step(LONG)
    assert round(env.step(HOLD)[4]["equity"], 2) == 10_000.0


def test_funding_in_trade_log() -> None:
    data = bars([100, 100, 100, 100], [100, 100, 100, 100], funding=[0, 0, 0.001, 0])
    env = make_env(data, taker_fee=0.0, slippage_bps=0.0)
    env.step(LONG)
    env.step(HOLD)
    env.step(CLOSE)
    assert round(env.trades[0]["funding"], 2) == 10.0
    assert round(env.trades[0]["pnl"], 2) == -10.0


def test_liquidation_price_and_step() -> None:
    # 10x long: 1000 units at 100; liquidation at (100,000 - 10,000) / (1000 * 0.995) = 90.4523
    data = bars([100, 100, 99, 95, 95], [100, 99, 95, 95, 95], low=[100, 98, 90, 95, 95])
    env = make_env(
        data,
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=10.0,
        maintenance_margin=0.005,
        liquidation_fee=0.002,
    )
    _, _, term, _, info = env.step(LONG)
    assert not term and round(info["equity"], 2) == 9000.0
    _, _, term, trunc, info = env.step(HOLD)  # bar 2's low 90 touches 90.4523
    p_liq = 90_000 / 995
    assert term and not trunc
    assert round(info["equity"], 2) == round(0.005 * 1000 * p_liq - 0.002 * 1000 * p_liq, 2)
    assert round(info["equity"], 2) == 271.36
    trade = env.trades[0]
    assert trade["liquidated"] and trade["exit_index"] == 2
    assert trade["exit_price"] == pytest.approx(p_liq)


def test_liquidation_gap_executes_at_open_and_floors_at_zero() -> None:
    data = bars([100, 100, 85, 85], [100, 99, 85, 85])
    env = make_env(
        data,
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=10.0,
        maintenance_margin=0.005,
        liquidation_fee=0.002,
    )
    env.step(LONG)
    _, _, term, _, info = env.step(HOLD)
    assert term and info["equity"] == 0.0
    assert env.trades[0]["exit_price"] == 85.0


def test_short_liquidation() -> None:
    # 5x short: 500 units at 100; p = (-50,000 - 10,000) / (-500 * 1.005) = 119.403
    data = bars([100, 100, 101, 101], [100, 101, 110, 110], high=[100, 102, 121, 110])
    env = make_env(
        data,
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=5.0,
        maintenance_margin=0.005,
        liquidation_fee=0.0,
    )
    env.step(SHORT)
    _, _, term, _, info = env.step(HOLD)
    assert term
    assert env.trades[0]["exit_price"] == pytest.approx(60_000 / 502.5)
    assert round(info["equity"], 2) == round(0.005 * 500 * 60_000 / 502.5, 2)


def test_open_position_closed_at_episode_end_with_fee() -> None:
    env = make_env(bars([100, 100, 110], [100, 105, 120]))
    env.step(LONG)
    _, _, term, trunc, info = env.step(HOLD)
    units = 10_000 / 100.1
    exit_px = 120 * 0.999  # close of the last bar minus 10 bps
    expected = 9990 + units * (exit_px - 100.1) - units * exit_px * 0.001
    assert trunc and not term
    assert info["units"] == 0.0
    assert round(info["equity"], 2) == round(expected, 2)
    assert env.trades[0]["exit_index"] == 2
    assert round(env.trades[0]["pnl"], 2) == round(expected - 10_000, 2)


def test_slippage_as_fraction_of_last_seen_range() -> None:
    # bar 0 range = 4; 25% of it = 1.0 slippage on the buy at the open of bar 1
    data = bars([100, 100, 100], [100, 100, 100], high=[102, 100, 100], low=[98, 100, 100])
    env = make_env(data, taker_fee=0.0, slippage_bps=0.0, slippage_range=0.25)
    env.step(LONG)
    assert env._state[0, 2] == pytest.approx(101.0)  # ENTRY


def test_limit_orders_use_maker_fee_without_slippage() -> None:
    env = make_env(bars([100, 100, 100], [100, 100, 100]), order_type="limit", maker_fee=0.0002)
    _, _, _, _, info = env.step(LONG)
    assert round(info["equity"], 2) == 9998.0


def test_reward_components_sum_to_reward() -> None:
    reward = WeightedReward(pnl=1.0, drawdown=0.5, fees=2.0, trade=0.01, benchmark=0.3)
    env = TradingEnv(
        bars([100, 100, 110, 120], [100, 105, 115, 120]),
        reward,
        EnvSettings(window=1, action_mode="discrete4", episode_length=None),
        evaluation=True,
    )
    env.reset(seed=0)
    _, r, _, _, info = env.step(LONG)
    parts = [v for k, v in info.items() if k.startswith("reward/")]
    assert r == pytest.approx(sum(parts))
    assert info["reward/trade"] == pytest.approx(-0.01)
    assert info["reward/fees"] == pytest.approx(-2.0 * 10_000 * 0.0004 / 10_000)


@pytest.mark.parametrize("mode", ["discrete4", "discrete3", "buy_sell_hold", "continuous"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trade_log_accounts_for_every_cent(mode: str, seed: int) -> None:
    # random trading on a random walk with funding: the net PnL of the logged trades (fees,
    # funding, flips, partial closes, the forced close) must add up to the equity change
    from env_testdata import random_walk

    settings = EnvSettings(
        window=4,
        action_mode=mode,
        leverage=2.0,
        inventory_levels=3,
        taker_fee=0.0005,
        slippage_bps=3.0,
        slippage_range=0.1,
        episode_length=None,
        min_trade=0.0,
    )
    env = TradingEnv(random_walk(300, seed=seed), WeightedReward(), settings, evaluation=True)
    env.action_space.seed(seed)
    info = run_episode(env, lambda *_: env.action_space.sample(), seed=seed).info
    trades = env.trades
    assert len(trades) > 5 and not trades["liquidated"].any()
    assert info["units"] == 0.0
    assert round(info["equity"] - env.initial_cash, 6) == round(trades["pnl"].sum(), 6)
    assert (trades["exit_index"] >= trades["entry_index"]).all()
    assert (trades["fees"] > 0).all()


def test_trade_log_grows_past_its_initial_capacity() -> None:
    from env_testdata import random_walk

    settings = EnvSettings(window=4, action_mode="discrete3", episode_length=None)
    env = TradingEnv(random_walk(1500, seed=5), WeightedReward(), settings, evaluation=True)
    # short, flat, long, ...: a trade per step
    info = run_episode(env, lambda step, _: step % 3, seed=0).info
    trades = env.trades
    assert len(trades) > 900
    assert (np.diff(trades["exit_index"]) >= 0).all()
    assert round(info["equity"] - env.initial_cash, 6) == round(trades["pnl"].sum(), 6)
    env.reset(seed=0)
    assert len(env.trades) == 0
