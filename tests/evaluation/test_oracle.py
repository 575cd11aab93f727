"""The DP oracle against brute force: every action sequence replayed through the env itself."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cryptotrade.env import EnvSettings, TradingEnv
from cryptotrade.evaluation.backtest import run_backtest, sequence_policy
from cryptotrade.evaluation.oracle import solve_oracle
from tests.env.env_testdata import random_walk


def _brute_force(env: TradingEnv, choices: list) -> float:
    """Best final equity over every sequence of ``choices`` (one per step) through ``env``."""
    steps = len(env.data) - env.window
    best = -np.inf
    for seq in itertools.product(choices, repeat=steps):
        env.reset(seed=0)
        done = False
        k = 0
        info: dict = {}
        while not done:
            _, _, term, trunc, info = env.step(seq[k])
            k += 1
            done = term or trunc
        best = max(best, info["equity"])
    return best


def _market(seed: int, vol: float, n: int = 9):
    data = random_walk(n=n, n_features=1, seed=seed)
    rng = np.random.default_rng(seed + 100)
    # wilder moves than the default walk so reversals, liquidations and funding all matter
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, vol / 3, n))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, vol, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, vol, n))
    funding = rng.normal(0.0005, 0.002, n)
    from dataclasses import replace

    return replace(data, open=open_, high=high, low=low, close=close, funding_rate=funding)


CASES = [
    ("discrete3", [0, 1, 2], {}),
    ("discrete4", [0, 1, 2, 3], {}),
    ("buy_sell_hold", [0, 1, 2], {}),
    ("discrete3", [0, 1, 2], {"leverage": 5.0, "maintenance_margin": 0.05}),
    ("discrete3", [0, 1, 2], {"allow_short": False, "slippage_range": 0.1}),
    ("discrete4", [0, 1, 2, 3], {"leverage": 3.0, "taker_fee": 0.002, "slippage_bps": 20.0}),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("mode", "choices", "extra"), CASES)
def test_oracle_matches_brute_force(mode, choices, extra, seed):
    data = _market(seed, vol=0.03 if not extra.get("leverage") else 0.08)
    settings = EnvSettings(window=2, action_mode=mode, episode_length=None, **extra)
    env = TradingEnv(data, settings=settings, evaluation=True)
    solution = solve_oracle(env, k_max=64)
    assert solution.exact and solution.name == "oracle"
    assert solution.value == pytest.approx(_brute_force(env, choices), rel=1e-12)
    # the DP's own action sequence reaches its value through the single backtest path
    replay = run_backtest(sequence_policy(solution.actions), env, seed=0)
    assert replay.equity[-1] == pytest.approx(solution.value, rel=1e-12)


def test_continuous_oracle_is_best_over_unit_targets():
    data = _market(3, vol=0.03)
    settings = EnvSettings(window=2, action_mode="continuous", episode_length=None)
    env = TradingEnv(data, settings=settings, evaluation=True)
    solution = solve_oracle(env)
    assert solution.name == "oracle_lower_bound"
    targets = [np.array([a], dtype=np.float32) for a in (-1.0, 0.0, 1.0)]
    assert solution.value == pytest.approx(_brute_force(env, targets), rel=1e-12)


def test_oracle_beats_every_random_sequence_on_a_long_path():
    data = random_walk(n=300, n_features=1, seed=5)
    env = TradingEnv(data, settings=EnvSettings(window=5, episode_length=None), evaluation=True)
    solution = solve_oracle(env)
    replay = run_backtest(sequence_policy(solution.actions), env, seed=0)
    assert replay.equity[-1] == pytest.approx(solution.value, rel=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        seq = list(rng.integers(0, 3, size=len(solution.actions)))
        other = run_backtest(sequence_policy(seq), env, seed=0)
        assert other.equity[-1] <= solution.value
    assert solution.value > env.initial_cash  # a perfect-foresight trader makes money


@pytest.mark.parametrize("mode", ["discrete3", "discrete4"])
def test_relaxed_dp_bounds_the_optimum_from_above(mode):
    data = random_walk(n=200, n_features=1, seed=7)
    settings = EnvSettings(window=5, action_mode=mode, episode_length=None)
    env = TradingEnv(data, settings=settings, evaluation=True)
    big = solve_oracle(env, k_max=32)
    small = solve_oracle(env, k_max=1)
    # every value found is reached by its actions, and no value exceeds the relaxed bound
    assert small.value <= big.value * (1 + 1e-12)
    assert big.value <= small.upper_bound * (1 + 1e-12)
    assert small.gap >= 0.0
    if mode == "discrete4":  # no reversals: nothing is carried, the DP is exact at any size
        assert small.exact and small.value == pytest.approx(big.value, rel=1e-12)


def test_hold_limit_gives_an_uncertified_lower_bound():
    data = random_walk(n=120, n_features=1, seed=8)
    env = TradingEnv(data, settings=EnvSettings(window=5, episode_length=None), evaluation=True)
    limited = solve_oracle(env, k_max=1, max_hold=3)
    assert not limited.exact and np.isnan(limited.upper_bound)
    assert limited.value <= solve_oracle(env, k_max=64).value * (1 + 1e-12)
