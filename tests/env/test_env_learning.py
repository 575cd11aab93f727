"""Slow: agents actually learn on a market whose next move is announced by a feature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from env_testdata import bars
from stable_baselines3 import PPO, SAC

from cryptotrade.env import EnvFactory, WeightedReward


def signalled_market(n: int = 3000, seed: int = 0) -> tuple:
    """Bar t's feature is the sign of bar t+1's move (+-0.5%): a learnable, known edge."""
    rng = np.random.default_rng(seed)
    signal = np.sign(rng.normal(size=n))
    step = np.r_[0.0, signal[:-1]] * 0.005
    close = 100.0 * np.exp(np.cumsum(step))
    open_ = np.r_[100.0, close[:-1]]
    return bars(list(open_), list(close), features=signal.astype(np.float32)[:, None]), signal


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "agent", "kwargs", "steps"),
    [
        ("discrete3", PPO, {"n_steps": 128, "batch_size": 256, "learning_rate": 1e-3}, 30_000),
        (
            "continuous",
            SAC,
            {"learning_starts": 500, "batch_size": 128, "gamma": 0.5, "gradient_steps": 4},
            4_000,
        ),
    ],
)
def test_agent_learns_the_signal(mode: str, agent: type, kwargs: dict, steps: int) -> None:
    torch.set_num_threads(1)
    data, _ = signalled_market()
    factory = EnvFactory(
        window=1,
        action_mode=mode,
        taker_fee=0.0,
        slippage_bps=0.0,
        episode_length=200,
        n_envs=8,
        vectorized=True,
        min_trade=0.0,
    )
    # rewards scaled so a 0.5% move is worth ~0.5: SAC's entropy bonus swamps raw log returns
    reward = WeightedReward(pnl=100.0)
    model = agent(
        "MlpPolicy",
        factory.make_vec(data, reward, seed=0),
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [32, 32]},
        **kwargs,
    )
    model.learn(total_timesteps=steps)
    env = factory.make(data, WeightedReward(), seed=0, evaluation=True)
    obs, info = env.reset(seed=0)
    while True:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            break
    # every correct bar earns 0.5%; random trading earns nothing on average
    assert info["equity"] > 10 * env.initial_cash
