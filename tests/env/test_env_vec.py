"""The native VecEnv against N TradingEnvs, and NaN checks over many random steps."""

from __future__ import annotations

import numpy as np
import pytest
from env_testdata import random_walk
from stable_baselines3.common.vec_env import VecCheckNan

from cryptotrade.env import ACTION_MODES, EnvFactory, WeightedReward

DATA = random_walk(500, seed=2)
REWARD = WeightedReward(
    drawdown=0.1,
    sharpe=0.01,
    idle=0.001,
    profit_bonus=0.1,
    trade=0.001,
    funding=1.0,
    liquidation=1.0,
    benchmark=0.2,
    fees=1.0,
)


def factory(mode: str, vectorized: bool, n_envs: int = 5) -> EnvFactory:
    # high leverage + a drawdown stop: episodes end by liquidation, drawdown and time limit
    return EnvFactory(
        window=6,
        action_mode=mode,
        episode_length=40,
        leverage=20.0,
        maintenance_margin=0.01,
        max_drawdown=0.3,
        n_envs=n_envs,
        vectorized=vectorized,
        include_cash=True,
        include_inventory=True,
    )


@pytest.mark.parametrize("mode", sorted(ACTION_MODES))
def test_native_vecenv_equals_dummy_vecenv(mode: str) -> None:
    native = factory(mode, True).make_vec(DATA, REWARD, seed=11)
    dummy = factory(mode, False).make_vec(DATA, REWARD, seed=11)
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    space = native.action_space
    space.seed(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(400):
        actions = np.array([space.sample() for _ in range(native.num_envs)])
        obs_n, rew_n, done_n, info_n = native.step(actions)
        obs_d, rew_d, done_d, info_d = dummy.step(actions)
        np.testing.assert_array_equal(obs_n, obs_d)
        np.testing.assert_array_equal(rew_n, rew_d)
        np.testing.assert_array_equal(done_n, done_d)
        for a, b in zip(info_n, info_d, strict=True):
            assert a.keys() <= b.keys() | {"episode"}
            if "terminal_observation" in b:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
                assert (a["episode"]["r"], a["episode"]["l"]) == (
                    b["episode"]["r"],
                    b["episode"]["l"],
                )
                for key in (k for k in b if k.startswith("episode/reward/")):
                    assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12)
                ends["truncated" if b["TimeLimit.truncated"] else "terminated"] += 1
    assert ends["terminated"] > 0 and ends["truncated"] > 0, ends


@pytest.mark.parametrize("vectorized", [True, False])
@pytest.mark.parametrize("mode", ["discrete3", "continuous"])
def test_vec_check_nan_over_10000_random_steps(mode: str, vectorized: bool) -> None:
    venv = VecCheckNan(
        factory(mode, vectorized, n_envs=4).make_vec(DATA, REWARD, seed=0), raise_exception=True
    )
    venv.reset()
    venv.action_space.seed(1)
    for _ in range(10_000 // 4):
        venv.step(np.array([venv.action_space.sample() for _ in range(4)]))


def test_native_vecenv_exposes_layout() -> None:
    venv = factory("discrete4", True).make_vec(DATA, REWARD, seed=0)
    assert (venv.window, venv.num_features, venv.account_size) == (6, 3, 6)
    assert venv.get_attr("initial_cash") == [10_000.0] * 5
    from stable_baselines3.common.monitor import Monitor

    assert venv.env_is_wrapped(Monitor) == [True] * 5


def test_native_infos_of_running_envs_are_read_only() -> None:
    venv = factory("discrete3", True, n_envs=2).make_vec(DATA, REWARD, seed=0)
    venv.reset()
    _, _, dones, infos = venv.step(np.array([1, 1]))
    assert not dones.any() and infos[0].get("episode") is None and "episode" not in infos[1]
    with pytest.raises(TypeError):
        infos[0]["x"] = 1  # type: ignore[index]
    infos[0] = {"replaced": True}  # the list itself is the caller's
    assert venv.step(np.array([1, 1]))[3][0] == {}


@pytest.mark.parametrize("vectorized", [True, False])
def test_layout_attributes_reach_through_any_vecenv(vectorized: bool) -> None:
    # sequence extractors read these to reshape the flat observation
    venv = factory("discrete3", vectorized, n_envs=2).make_vec(DATA, REWARD, seed=0)
    assert venv.get_attr("window") == [6, 6]
    assert venv.get_attr("num_features") == [3, 3]
    assert venv.get_attr("account_size") == [6, 6]


def test_factory_defaults_to_the_native_vecenv() -> None:
    from cryptotrade.env.vec_env import NativeVecEnv

    venv = EnvFactory(window=6, episode_length=40).make_vec(DATA, REWARD, seed=0)
    assert isinstance(venv, NativeVecEnv) and venv.num_envs == 8


def test_envs_share_one_compiled_market() -> None:
    # issue 7: the VecEnv does not reach into a template env; all envs read one compiled market
    from cryptotrade.env import CompiledMarket, TradingEnv
    from cryptotrade.env.vec_env import NativeVecEnv

    market = CompiledMarket.build(DATA, REWARD, factory("discrete3", True).settings)
    native = NativeVecEnv(market=market, n_envs=3)
    single = TradingEnv(market=market, evaluation=True)
    assert native.market is market and single.market is market
    assert not hasattr(native, "_template")
    assert native.get_attr("settings") == [market.settings] * 3
    dummy = factory("discrete3", False, n_envs=3).make_vec(DATA, REWARD, seed=0)
    markets = {id(m) for m in dummy.get_attr("market")}
    assert len(markets) == 1  # DummyVecEnv's TradingEnvs share one copy too
    with pytest.raises(TypeError, match="not both"):
        TradingEnv(DATA, market=market)
