"""Edge cases found in review: slippage sign of small rebalances, stepping past the last bar."""

from __future__ import annotations

import numpy as np
import pytest
from env_testdata import bars

from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward

FLAT = bars([100.0] * 5, [100.0] * 5)


def test_small_rebalance_never_fills_on_the_wrong_side_of_the_open() -> None:
    # fee 0, 10 bps slippage, flat prices: 0.5 exposure buys 10,000 * 0.5 / 100.1 = 49.950 units,
    # equity 9995.005 (10,000 - 49.95 * 0.1 slippage). A target of 0.5001 is a buy at the open
    # (0.5001 * 9995.005 / 100 = 49.985 > 49.950) but fewer units at the slipped 100.1 (49.935):
    # filling that would SELL 0.015 units at 100.1 > open, gaining from slippage.
    settings = EnvSettings(
        window=1,
        action_mode="continuous",
        taker_fee=0.0,
        slippage_bps=10.0,
        min_trade=0.0,
        episode_length=None,
    )
    env = TradingEnv(FLAT, WeightedReward(), settings, evaluation=True)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5]))
    units, equity = info["units"], info["equity"]
    assert units == pytest.approx(5000 / 100.1)
    assert equity == pytest.approx(10_000 - units * 0.1)
    _, _, _, _, info = env.step(np.array([0.5001]))
    # prices never move and every fill pays slippage: equity can never rise
    assert info["equity"] <= equity + 1e-9
    assert info["units"] == pytest.approx(units)  # slippage eats the whole rebalance: no trade


def test_step_after_the_last_bar_raises_without_reading_past_the_data() -> None:
    settings = EnvSettings(window=1, action_mode="discrete4", episode_length=None)
    env = TradingEnv(bars([100, 100, 110], [100, 105, 120]), WeightedReward(), settings, True)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)  # before reset: the state has no episode
    env.reset(seed=0)
    env.step(1)
    _, _, _, trunc, info = env.step(0)
    assert trunc and env.current_index == 2
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)  # bar 3 does not exist: the kernel would read past the price arrays
    assert env.current_index == 2 and env.equity == info["equity"]
    env.reset(seed=0)
    assert env.step(1)[4]["units"] > 0.0


def test_native_vecenv_matches_dummy_after_an_unseeded_reset() -> None:
    # SB3 calls reset() again at every learn(): env i must still follow TradingEnv(seed + i),
    # whose unseeded reset draws the next start from the same generator
    from env_testdata import random_walk

    from cryptotrade.env import EnvFactory

    data = random_walk(500, seed=2)
    kw = dict(window=6, action_mode="discrete3", episode_length=40, n_envs=3)
    native = EnvFactory(**kw, vectorized=True).make_vec(data, None, seed=11)
    dummy = EnvFactory(**kw, vectorized=False).make_vec(data, None, seed=11)
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    actions = np.array([2, 0, 1])
    for _ in range(5):
        native.step(actions)
        dummy.step(actions)
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    for _ in range(60):  # through an auto-reset too
        obs_n, rew_n, done_n, _ = native.step(actions)
        obs_d, rew_d, done_d, _ = dummy.step(actions)
        np.testing.assert_array_equal(obs_n, obs_d)
        np.testing.assert_array_equal(rew_n, rew_d)
        np.testing.assert_array_equal(done_n, done_d)


def test_gap_liquidation_trade_pnl_is_the_loss_the_account_took() -> None:
    # 10x long of 1000 units at 100 on 10,000; the open of bar 2 gaps to 85, through the
    # liquidation price 90.45: the gross loss 15,000 exceeds the margin, the balance is floored
    # at 0 (insurance fund), so the trade lost exactly the 10,000 equity, not 15,000 + fee
    settings = EnvSettings(
        window=1,
        action_mode="discrete4",
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=10.0,
        maintenance_margin=0.005,
        liquidation_fee=0.002,
        episode_length=None,
    )
    env = TradingEnv(bars([100, 100, 85, 85], [100, 99, 85, 85]), None, settings, True)
    env.reset(seed=0)
    env.step(1)
    _, _, term, _, info = env.step(0)
    trade = env.trades[0]
    assert term and trade["liquidated"] and info["equity"] == 0.0
    assert round(trade["pnl"], 2) == -10_000.0
    assert round(trade["pnl"], 2) == round(info["equity"] - env.initial_cash, 2)
