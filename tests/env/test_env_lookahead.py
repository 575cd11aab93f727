"""Look-ahead canary: nothing the agent sees or is paid up to bar t depends on bars after t.

The same check runs on the honest env and on a deliberately leaky variant that fills orders at
the close of the bar the agent has just seen; the check must pass on the first and catch the
second.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from env_testdata import bars, random_walk

from cryptotrade.data.market_data import MarketData
from cryptotrade.env import EnvSettings, TradingEnv, WeightedReward
from cryptotrade.env.compiled import CompiledMarket
from cryptotrade.env.core import ROW_FILL

SETTINGS = EnvSettings(
    window=4,
    action_mode="discrete3",
    taker_fee=0.0,
    slippage_bps=0.0,
    slippage_range=0.1,  # reads the last seen bar's range: past bars must stay unperturbed
    leverage=2.0,
    maintenance_margin=0.01,
    episode_length=None,
)
REWARD = WeightedReward(
    pnl=1.0,
    drawdown=0.1,
    sharpe=0.01,
    benchmark=0.5,
    fees=1.0,
    profit_bonus=0.1,
    trade=0.001,
    funding=1.0,
    liquidation=1.0,
)


def leaky_env(data: MarketData, reward, settings, evaluation: bool, **arrays) -> TradingEnv:
    """A TradingEnv over a compiled market whose arrays were swapped for leaky ones."""
    market = CompiledMarket.build(data, reward, settings, evaluation=evaluation)
    leaky = dataclasses.replace(market, **{k: f(market) for k, f in arrays.items()})
    return TradingEnv(market=leaky, evaluation=evaluation)


def fill_at_seen_close(market: CompiledMarket) -> np.ndarray:
    prices = market.prices.copy()
    prices[ROW_FILL] = np.r_[market.close[0], market.close[:-1]]
    return prices


def LeakyFillEnv(data, reward, settings, evaluation=False) -> TradingEnv:
    """Fills at the close of the decision bar, a price the agent has already seen."""
    return leaky_env(data, reward, settings, evaluation, prices=fill_at_seen_close)


def perturb_after(data: MarketData, k: int, seed: int) -> MarketData:
    """A copy of ``data`` whose bars after ``k`` (prices, funding, features) are scrambled."""
    rng = np.random.default_rng(seed)
    scale = np.r_[np.ones(k + 1), rng.uniform(0.5, 1.5, len(data) - k - 1)]
    wide = np.r_[np.ones(k + 1), np.full(len(data) - k - 1, 1.1)]  # wider ranges, future only
    feats = data.features.copy()
    feats[k + 1 :] = rng.normal(size=feats[k + 1 :].shape)
    funding = data.funding_rate.copy()
    funding[k + 1 :] = rng.normal(0, 0.01, len(data) - k - 1)
    return MarketData(
        data.name,
        data.timestamps,
        data.open * scale,
        data.high * scale * wide,
        data.low * scale / wide,
        data.close * scale,
        data.volume,
        feats,
        data.feature_names,
        funding,
    )


def rollout(env_cls, data: MarketData, policy, steps: int):
    env = env_cls(data, REWARD, SETTINGS, evaluation=True)
    obs, info = env.reset(seed=0)
    out = [(env.current_index, obs.tobytes(), None, info["equity"])]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(policy(obs, env))
        out.append((env.current_index, obs.tobytes(), r, info["equity"]))
        if term or trunc:
            break
    return out, env


def canary_failures(env_cls) -> list[str]:
    """Run both checks on ``env_cls``; return what leaked (empty = honest)."""
    failures = []
    # 1. future bars perturbed: every observation and reward up to bar k must be unchanged
    data = random_walk(120, seed=1)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, 200)

    def replay(obs, env):
        return int(actions[env.current_index])

    base, _ = rollout(env_cls, data, replay, 200)
    for k in (10, 40, 77):
        other, _ = rollout(env_cls, perturb_after(data, k, seed=k), replay, 200)
        seen = [(a, b) for a, b in zip(base, other, strict=False) if a[0] <= k]
        if any(a != b for a, b in seen):
            failures.append(f"perturbing bars after {k} changed an observation or reward")
    # 2. a path whose opens are constant (100) while closes swing +-5 around it: orders that fill
    #    at the open cannot earn anything (slippage only costs), whatever the policy knows
    #    about past closes
    closes = [100.0] * 4 + [95.0, 105.0] * 20 + [100.0]
    path = bars([100.0] * len(closes), closes, features=np.array(closes, np.float32)[:, None])

    def contrarian(obs, env):  # trade against the last close the agent saw, then flatten
        if env.current_index >= len(closes) - 2:
            return 1
        if obs[-4] != 0.0:  # position side: close it
            return 1
        return 2 if obs[4 * 1 - 1] < 100.0 else 0

    out, env = rollout(env_cls, path, contrarian, 200)
    if out[-1][3] - env.initial_cash > 1e-6:
        failures.append(f"profit {out[-1][3] - env.initial_cash:.2f} from fills at seen prices")
    return failures


def test_honest_env_passes_canary() -> None:
    assert canary_failures(TradingEnv) == []


def test_leaky_variant_is_caught() -> None:
    failures = canary_failures(LeakyFillEnv)
    assert any("fills at seen prices" in f for f in failures), failures


def PeekingObsEnv(data, reward, settings, evaluation=False) -> TradingEnv:
    """Observes the features of the next bar (a classic off-by-one in feature alignment)."""

    def peek(market: CompiledMarket) -> np.ndarray:
        return np.ascontiguousarray(np.roll(market.features, -1, axis=0))

    return leaky_env(data, reward, settings, evaluation, features=peek)


def test_future_feature_leak_is_caught() -> None:
    failures = canary_failures(PeekingObsEnv)
    assert any("perturbing bars after" in f for f in failures), failures
