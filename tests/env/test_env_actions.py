"""Semantics of each action mode and of action_for_target."""

from __future__ import annotations

import numpy as np
import pytest
from env_testdata import bars

from cryptotrade.env import EnvSettings, TradingEnv

FLAT = bars([100] * 20, [100] * 20)


def make_env(mode: str, **kw) -> TradingEnv:
    base = dict(window=1, action_mode=mode, taker_fee=0.0, slippage_bps=0.0, episode_length=None)
    base.update(kw)
    env = TradingEnv(FLAT, None, EnvSettings(**base), evaluation=True)
    env.reset(seed=0)
    return env


def units_after(env: TradingEnv, actions) -> list[float]:
    return [env.step(a)[4]["units"] for a in actions]


def test_discrete4_long_short_only_from_flat() -> None:
    env = make_env("discrete4")
    # long, short ignored while long, close, short, long ignored while short, hold
    assert units_after(env, [1, 2, 3, 2, 1, 0]) == [100.0, 100.0, 0.0, -100.0, -100.0, -100.0]


def test_discrete3_targets_sides_and_reverses() -> None:
    env = make_env("discrete3", leverage=2.0)
    assert units_after(env, [2, 2, 0, 1]) == [200.0, 200.0, -200.0, 0.0]


def test_discrete3_short_means_flat_without_shorts() -> None:
    env = make_env("discrete3", allow_short=False)
    assert units_after(env, [0, 2, 0]) == [0.0, 100.0, 0.0]


def test_buy_sell_hold_inventory_levels() -> None:
    env = make_env("buy_sell_hold", inventory_levels=2, allow_short=False)
    assert units_after(env, [1, 1, 1, 0, 2, 2, 2]) == [50.0, 100.0, 100.0, 100.0, 50.0, 0.0, 0.0]
    env = make_env("buy_sell_hold", inventory_levels=1, allow_short=True)
    assert units_after(env, [2, 2, 1, 1]) == [-100.0, -100.0, 0.0, 100.0]


def test_continuous_targets_exposure_with_min_trade_band() -> None:
    env = make_env("continuous", leverage=2.0, min_trade=0.1)
    got = units_after(
        env,
        [
            np.array([0.5]),
            np.array([0.55]),
            np.array([-1.0]),
            np.array([1.0]),
            np.array([0.02]),
            np.array([0.0]),
            np.array([0.0]),
        ],
    )
    # 0.55 within the band; 0.02 trades (far from 1); 0 always closes
    assert got == [100.0, 100.0, -200.0, 200.0, 4.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("mode", "kw"),
    [
        ("discrete4", {}),
        ("discrete3", {}),
        ("buy_sell_hold", {"inventory_levels": 3}),
        ("continuous", {}),
    ],
)
@pytest.mark.parametrize("target", [1.0, -1.0, 0.0])
def test_action_for_target_reaches_target(mode: str, kw: dict, target: float) -> None:
    env = make_env(mode, **kw)
    for _ in range(6):
        env.step(env.action_for_target(-target if target else 1.0))
    for _ in range(6):
        _, _, _, _, info = env.step(env.action_for_target(target))
    assert info["position"] == pytest.approx(target)


@pytest.mark.parametrize(
    ("mode", "bad"),
    [
        ("discrete3", 7),  # once opened a 6.2x position
        ("discrete3", -1),
        ("discrete4", 4),
        ("buy_sell_hold", 1.5),
        ("continuous", np.array([np.nan])),  # once took equity to 0 in one step
        ("continuous", np.array([1.5], dtype=np.float32)),
        ("continuous", -1.01),
    ],
)
def test_action_outside_the_space_raises_naming_action_and_space(mode: str, bad) -> None:
    env = make_env(mode)
    before = env._state.copy()
    with pytest.raises(ValueError, match=r"action .* is outside the action space (Discrete|Box)"):
        env.step(bad)
    np.testing.assert_array_equal(env._state, before)  # nothing happened
    assert env.step(env.action_space.sample())[4]["equity"] > 0  # the env still works


@pytest.mark.parametrize("vectorized", [True, False])
def test_vecenv_rejects_an_action_outside_the_space(vectorized: bool) -> None:
    from env_testdata import random_walk

    from cryptotrade.env import EnvFactory

    factory = EnvFactory(window=4, episode_length=20, n_envs=3, vectorized=vectorized)
    venv = factory.make_vec(random_walk(100), None, seed=0)
    venv.reset()
    with pytest.raises(ValueError, match=r"action 7 .*outside the action space Discrete\(3\)"):
        venv.step(np.array([1, 7, 2]))
