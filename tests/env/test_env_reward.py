"""Each reward component, hand-computed on tiny paths (all weights 1 = raw component values)."""

from __future__ import annotations

import math

import pytest
from env_testdata import bars

from cryptotrade.env import COMPONENTS, EnvSettings, TradingEnv, WeightedReward

HOLD, LONG, SHORT, CLOSE = 0, 1, 2, 3
ALL_ONES = dict.fromkeys(COMPONENTS, 1.0)


def make_env(data, reward=None, **kw) -> TradingEnv:
    base = dict(
        window=1,
        action_mode="discrete4",
        taker_fee=0.0,
        slippage_bps=0.0,
        leverage=1.0,
        maintenance_margin=0.0,
        episode_length=None,
    )
    base.update(kw)
    reward = reward or WeightedReward(**ALL_ONES, idle_threshold=1)
    env = TradingEnv(data, reward, EnvSettings(**base), evaluation=True)
    env.reset(seed=0)
    return env


def test_pnl_benchmark_trade_profit_idle() -> None:
    env = make_env(bars([100, 100, 110, 120, 120], [100, 105, 115, 110, 120]))
    _, _, _, _, i1 = env.step(LONG)
    assert i1["reward/pnl"] == pytest.approx(math.log(1.05))
    assert i1["reward/benchmark"] == pytest.approx(0.0, abs=1e-12)  # 1x long = buy & hold
    assert i1["reward/trade"] == -1.0
    assert i1["reward/drawdown"] == 0.0
    _, _, _, _, i2 = env.step(HOLD)
    assert i2["reward/pnl"] == pytest.approx(math.log(11_500 / 10_500))
    assert i2["reward/trade"] == 0.0
    _, _, _, _, i3 = env.step(CLOSE)  # sell 100 units at 120: +2000 realised
    assert i3["reward/pnl"] == pytest.approx(math.log(12_000 / 11_500))
    assert i3["reward/benchmark"] == pytest.approx(math.log(12_000 / 11_500) - math.log(110 / 115))
    assert i3["reward/profit_bonus"] == pytest.approx(2000 / 11_500)
    assert i3["reward/idle"] == 0.0  # first flat step, threshold 1
    _, _, _, trunc, i4 = env.step(HOLD)
    assert i4["reward/idle"] == -1.0  # second consecutive flat step
    assert i4["reward/pnl"] == 0.0
    assert trunc
    sums = {
        c: i1[f"reward/{c}"] + i2[f"reward/{c}"] + i3[f"reward/{c}"] + i4[f"reward/{c}"]
        for c in COMPONENTS
    }
    for c in COMPONENTS:
        assert i4[f"episode/reward/{c}"] == pytest.approx(sums[c])


def test_drawdown_and_sharpe() -> None:
    env = make_env(bars([100, 100, 100], [100, 110, 99]))
    env.step(LONG)
    _, _, _, _, info = env.step(HOLD)
    assert info["reward/drawdown"] == pytest.approx(-(1 - 9900 / 11_000))
    r1, r2 = math.log(1.1), math.log(0.9)
    assert info["reward/sharpe"] == pytest.approx(((r1 + r2) / 2) / (abs(r1 - r2) / 2))


def test_sharpe_window_uses_last_returns_only() -> None:
    reward = WeightedReward(pnl=0.0, sharpe=1.0, sharpe_window=2)
    env = make_env(bars([100] * 5, [100, 110, 99, 108.9, 108.9]), reward)
    env.step(LONG)
    env.step(HOLD)
    _, _, _, _, info = env.step(HOLD)
    r2, r3 = math.log(0.9), math.log(1.1)
    assert info["reward/sharpe"] == pytest.approx(((r2 + r3) / 2) / (abs(r2 - r3) / 2))


def test_fee_and_funding_components() -> None:
    data = bars([100, 100, 100, 100], [100, 100, 100, 100], funding=[0, 0, 0.001, 0])
    env = make_env(data, taker_fee=0.001)
    _, _, _, _, info = env.step(SHORT)  # fee 0.1% of 10,000 notional
    assert info["reward/fees"] == pytest.approx(-10.0 / 10_000)
    _, _, _, _, info = env.step(HOLD)  # short receives 0.1% of (10,000 / 100) * 100
    assert info["reward/funding"] == pytest.approx(10.0 / 9990.0)


def test_liquidation_component_and_weights() -> None:
    data = bars([100, 100, 99, 95], [100, 99, 95, 95], low=[100, 98, 90, 95])
    reward = WeightedReward(pnl=0.5, liquidation=7.0)
    env = make_env(data, reward, leverage=10.0, maintenance_margin=0.005, liquidation_fee=0.0)
    env.step(LONG)
    _, r, term, _, info = env.step(HOLD)
    assert term
    assert info["reward/liquidation"] == -7.0
    assert info["reward/pnl"] == pytest.approx(0.5 * math.log(info["equity"] / 9000.0))
    assert r == pytest.approx(info["reward/liquidation"] + info["reward/pnl"])


def test_max_drawdown_terminates_and_closes() -> None:
    env = make_env(bars([100, 100, 100, 100], [100, 110, 95, 100]), max_drawdown=0.1)
    env.step(LONG)
    _, _, term, trunc, info = env.step(HOLD)  # 1 - 9500 / 11000 = 13.6% > 10%
    assert term and not trunc and info["units"] == 0.0
    assert len(env.trades) == 1


def test_bankruptcy_terminates_with_finite_reward() -> None:
    # 1x short, price triples: with no maintenance margin the account is closed out at zero
    # equity (the bankruptcy price), never below; the log-return reward stays finite
    env = make_env(bars([100, 100, 300, 300], [100, 100, 300, 300]))
    env.step(SHORT)
    _, r, term, _, info = env.step(HOLD)
    assert term and info["equity"] == 0.0 and math.isfinite(r) and r < -10
    assert env.trades[0]["liquidated"]


def test_invalid_reward_settings() -> None:
    with pytest.raises(ValueError, match="sharpe_window"):
        WeightedReward(sharpe_window=1)
