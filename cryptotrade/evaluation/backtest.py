"""Deterministic backtests of a policy on a held-out split, through the same env it trained in.

Baselines run through the very same env (fills, fees, funding, liquidation), so a policy and its
baselines are measured by one market model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from cryptotrade.env.reward import COMPONENTS
from cryptotrade.evaluation.metrics import bar_seconds, performance

# A policy maps (observation, env) to an action; the env is there for baselines that ask it
# which action reaches a target exposure.
Policy = Callable[[np.ndarray, gym.Env], Any]


@dataclass(frozen=True)
class BacktestResult:
    """What one backtest produced; point ``i`` is the state after step ``i`` (0 = the reset).

    Attributes:
        timestamps: Open time of the bar each equity point was marked on (``datetime64[ns]``).
        close_times: Close time of that bar: when the equity point was marked.
        index: Bar index (into the split's MarketData) of each point.
        equity: Mark-to-market equity at the bar's close, starting at the initial capital.
        position: Exposure after each step: signed notional / equity (``info["position"]``).
        units: Signed position in base units after each step.
        rewards: Reward of each step (one fewer than the points).
        components: Weighted reward components of each step, ``(steps, len(COMPONENTS))``.
        trades: The env's trade log (``TRADE_DTYPE``) of the episode.
        metrics: :func:`cryptotrade.evaluation.metrics.performance` of the backtest.
        regime: Regime label of each point's bar (synthetic markets), else ``None``.
    """

    timestamps: np.ndarray
    close_times: np.ndarray
    index: np.ndarray
    equity: np.ndarray
    position: np.ndarray
    units: np.ndarray
    rewards: np.ndarray
    components: np.ndarray
    trades: np.ndarray
    metrics: dict[str, float]
    regime: np.ndarray | None = None
    actions: list[Any] = field(default_factory=list)


def run_backtest(policy: Policy, env: gym.Env, *, seed: int) -> BacktestResult:
    """Roll ``policy`` through one whole episode of ``env`` and measure it.

    This is the single replay path: the agent, every baseline and the oracle's action sequence
    run through it, so all are measured by one market model.

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
    units = [float(info.get("units", 0.0))]
    rewards: list[float] = []
    components: list[list[float]] = []
    actions: list[Any] = []
    done = False
    while not done:
        action = policy(obs, base)
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        idx.append(base.current_index)
        equity.append(float(info["equity"]))
        position.append(float(info["position"]))
        units.append(float(info["units"]))
        rewards.append(float(reward))
        components.append([float(info[f"reward/{c}"]) for c in COMPONENTS])
        done = terminated or truncated
    data = base.data
    index = np.minimum(np.asarray(idx), len(data) - 1)
    bar = np.timedelta64(round(bar_seconds(data.timestamps) * 1e9), "ns")
    timestamps = data.timestamps[index]
    close_times = timestamps + bar
    trades = np.asarray(base.trades)
    equity_arr = np.asarray(equity)
    units_arr = np.asarray(units)
    position_arr = np.asarray(position)
    return BacktestResult(
        timestamps=timestamps,
        close_times=close_times,
        index=index,
        equity=equity_arr,
        position=position_arr,
        units=units_arr,
        rewards=np.asarray(rewards),
        components=np.asarray(components).reshape(len(rewards), len(COMPONENTS)),
        trades=trades,
        metrics=performance(
            equity_arr,
            close_times,
            trades=trades,
            position=position_arr,
            traded_notional=traded_notional(
                units_arr, index, data.open, data.close, inverse=bool(base.market.inverse)
            ),
            bar_seconds_=bar_seconds(data.timestamps),
        ),
        regime=None if data.regime is None else np.asarray(data.regime)[index],
        actions=actions,
    )


def traded_notional(
    units: np.ndarray,
    index: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    *,
    inverse: bool = False,
) -> float:
    """Sum of ``|units traded| x reference price`` over the steps (before slippage), in the
    margin currency (inverse contracts: ``|contracts traded| / price``, in coin).

    A step's change of position is priced at its bar's open (where orders fill); the last step's
    at its close (where the episode's open position is closed).
    """
    if len(units) < 2:
        return 0.0
    price = open_[index[1:]].astype(np.float64)
    price[-1] = close[index[-1]]
    traded = np.abs(np.diff(units))
    return float(np.sum(traded / price if inverse else traded * price))


def model_policy(model: Any, *, reset_every: int | None = None) -> Policy:
    """A trained SB3 model acting deterministically (recurrent state carried across steps).

    A model that stands aside (:func:`cryptotrade.agents.selection.stand_aside`: it did not
    beat flat on validation) holds the flat position.

    Args:
        model: The trained model.
        reset_every: Restart the recurrent state every this many steps (e.g. the training
            episode length, to replay a recurrent policy only over stretches it was trained
            on); ``None`` carries it over the whole backtest. No effect on feed-forward policies.
    """
    if getattr(model, "stand_aside_action", None) is not None:  # gated: holds no position
        return target_policy(0.0)
    state: list[Any] = [None]
    step = [0]

    def act(obs: np.ndarray, env: gym.Env) -> Any:
        start = step[0] == 0 or (reset_every is not None and step[0] % reset_every == 0)
        action, state[0] = model.predict(
            obs, state=state[0], episode_start=np.array([start]), deterministic=True
        )
        step[0] += 1
        return action

    return act


def target_policy(target: float) -> Policy:
    """Always steer toward ``target`` exposure: 1 = buy & hold, 0 = flat, -1 = short & hold."""
    return lambda obs, env: env.action_for_target(target)  # type: ignore[attr-defined]


def sequence_policy(actions: list[Any]) -> Policy:
    """Replay a fixed action sequence (the oracle's); the last action repeats if it runs out."""
    step = [0]

    def act(obs: np.ndarray, env: gym.Env) -> Any:
        a = actions[min(step[0], len(actions) - 1)]
        step[0] += 1
        return a

    return act


def random_policy(seed: int) -> Policy:
    """Uniformly random actions from the env's action space, seeded (a baseline)."""
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray, env: gym.Env) -> Any:
        space: Any = env.action_space
        if hasattr(space, "n"):
            return int(rng.integers(space.n))
        return rng.uniform(space.low, space.high).astype(space.dtype)

    return act
