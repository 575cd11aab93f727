"""Deterministic backtests of a policy on a held-out split, through the same env it trained in.

Baselines run through the very same env (fills, fees, funding, liquidation), so a policy and its
baselines are measured by one market model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from cryptotrade.evaluation.metrics import performance

# A policy maps (observation, env) to an action; the env is there for baselines that ask it
# which action reaches a target exposure.
Policy = Callable[[np.ndarray, gym.Env], Any]


@dataclass(frozen=True)
class BacktestResult:
    """What one backtest produced.

    Attributes:
        timestamps: Bar time of each equity point (``datetime64[ns]``).
        equity: Mark-to-market equity, starting at the initial capital.
        position: Position after each step (as the env reports it in ``info["position"]``).
        rewards: Reward of each step.
        trades: The env's trade log (structured array) of the episode.
        metrics: :func:`cryptotrade.evaluation.metrics.performance` of the equity curve.
    """

    timestamps: np.ndarray
    equity: np.ndarray
    position: np.ndarray
    rewards: np.ndarray
    trades: np.ndarray
    metrics: dict[str, float]


def run_backtest(policy: Policy, env: gym.Env, *, seed: int) -> BacktestResult:
    """Roll ``policy`` through one whole episode of ``env`` and measure it.

    Args:
        policy: Chooses the action for each observation.
        env: An evaluation env (``EnvFactory.make(..., evaluation=True)``): the whole split,
            starting at the first bar with a full observation window.
        seed: Passed to ``env.reset``.

    Returns:
        The equity curve, positions, rewards, trades and metrics.
    """
    obs, info = env.reset(seed=seed)
    base: Any = env.unwrapped  # a TradingEnv
    idx = [base.current_index]
    equity = [float(info.get("equity", base.initial_cash))]
    position = [float(info.get("position", 0.0))]
    rewards: list[float] = []
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs, base))
        idx.append(base.current_index)
        equity.append(float(info["equity"]))
        position.append(float(info["position"]))
        rewards.append(float(reward))
        done = terminated or truncated
    data = base.data
    timestamps = data.timestamps[np.minimum(np.asarray(idx), len(data) - 1)]
    trades = np.asarray(base.trades)
    equity_arr = np.asarray(equity)
    return BacktestResult(
        timestamps=timestamps,
        equity=equity_arr,
        position=np.asarray(position),
        rewards=np.asarray(rewards),
        trades=trades,
        metrics=performance(equity_arr, timestamps, num_trades=len(trades)),
    )


def model_policy(model: Any) -> Policy:
    """A trained SB3 model acting deterministically (recurrent state carried across steps)."""
    state: list[Any] = [None]
    start = [True]

    def act(obs: np.ndarray, env: gym.Env) -> Any:
        action, state[0] = model.predict(
            obs, state=state[0], episode_start=np.array([start[0]]), deterministic=True
        )
        start[0] = False
        return action

    return act


def target_policy(target: float) -> Policy:
    """Always steer toward ``target`` exposure: 1 = buy & hold, 0 = flat, -1 = short & hold."""
    return lambda obs, env: env.action_for_target(target)  # type: ignore[attr-defined]
