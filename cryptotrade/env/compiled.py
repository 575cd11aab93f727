"""CompiledMarket: the arrays, settings and spaces every env over one split shares.

Built once from a :class:`~cryptotrade.data.market_data.MarketData`, the reward weights and the
:class:`~cryptotrade.env.settings.EnvSettings`; :class:`~cryptotrade.env.trading_env.TradingEnv`
and :class:`~cryptotrade.env.vec_env.NativeVecEnv` both step the numba kernels on its arrays, so
``n`` envs over one split hold one copy of the features and prices. Nothing writes to them after
:meth:`CompiledMarket.build`; each env keeps only its own state rows and buffers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.actions import action_space_for
from cryptotrade.env.core import (
    N_PRICE_ROWS,
    ROW_CLOSE,
    ROW_FILL,
    ROW_FUNDING,
    ROW_HIGH,
    ROW_LOW,
    ROW_MARK_HIGH,
    ROW_MARK_LOW,
    ROW_MARK_OPEN,
    ROW_OPEN,
)
from cryptotrade.env.reward import WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.spaces import WindowedBox

log = logging.getLogger(__name__)
_builds = [0]  # CompiledMarket.build calls in this process (a debug counter, see compile_count)


def compile_count() -> int:
    """How many markets :meth:`CompiledMarket.build` compiled in this process so far.

    Each build also logs ``compiled market #n`` at DEBUG level (``hydra.verbose=
    cryptotrade.env.compiled`` shows them); ``experiments/benchmarks/bench_pipeline.py`` counts
    them for the default pipeline.
    """
    return _builds[0]


def price_rows(data: MarketData) -> np.ndarray:
    """The ``(N_PRICE_ROWS, T)`` float64 price array the kernels read (``ROW_*`` rows).

    ``ROW_FILL`` is the reference price of a fill at each bar, the open (the look-ahead canary
    test swaps it for a leaky one). The mark rows are what funding and liquidation see during
    bar ``n``, by what the data carries:

    * no mark series: the traded open, low and high (liquidation on the trade candle's
      low/high);
    * mark closes only (``mark_price[n]`` = the mark at bar ``n``'s close): the mark at the open,
      ``mark_price[n - 1]``, and the low and high of a mark moving linearly from there to
      ``mark_price[n]`` (so the range is the two closes');
    * mark candles (``mark_low``/``mark_high``, the mark's own low/high during bar ``n``): that
      low and high, widened to the two closes (a candle's range holds them on an exchange's
      data; the widening only matters on a bar whose candle was missing, where the source puts
      the close). A long is liquidated on the bar whose mark low reaches its liquidation price,
      a short on the bar whose mark high does.
    """
    rows = np.empty((N_PRICE_ROWS, len(data)), dtype=np.float64)
    rows[ROW_OPEN] = data.open
    rows[ROW_HIGH] = data.high
    rows[ROW_LOW] = data.low
    rows[ROW_CLOSE] = data.close
    rows[ROW_FILL] = data.open
    rows[ROW_FUNDING] = data.funding_rate
    mark = getattr(data, "mark_price", None)
    if mark is None:
        rows[ROW_MARK_OPEN] = data.open
        rows[ROW_MARK_LOW] = data.low
        rows[ROW_MARK_HIGH] = data.high
    else:
        mark = np.asarray(mark, dtype=np.float64)
        at_open = np.r_[mark[:1], mark[:-1]]
        rows[ROW_MARK_OPEN] = at_open
        rows[ROW_MARK_LOW] = np.minimum(at_open, mark)
        rows[ROW_MARK_HIGH] = np.maximum(at_open, mark)
        mark_low, mark_high = getattr(data, "mark_low", None), getattr(data, "mark_high", None)
        if mark_low is not None and mark_high is not None:
            np.minimum(rows[ROW_MARK_LOW], mark_low, out=rows[ROW_MARK_LOW])
            np.maximum(rows[ROW_MARK_HIGH], mark_high, out=rows[ROW_MARK_HIGH])
    return rows


@dataclass(frozen=True, eq=False)
class CompiledMarket:
    """One split compiled for the kernels: prices, features, params, weights and spaces.

    Attributes:
        data: The split (timestamps for the trade log, the source of the arrays).
        settings: The market/episode settings.
        reward: The reward weights.
        prices: ``(N_PRICE_ROWS, T)`` float64, see :func:`price_rows`.
        features: ``(T, F)`` float32, C-contiguous.
        params: The float64 params vector (``P_*``).
        weights: Reward weights in ``COMPONENTS`` order.
        observation_space: Flat ``Box`` of ``window * F + account_size`` float32 that carries
            its layout (:class:`~cryptotrade.env.spaces.WindowedBox`).
        action_space: The action mode's space.
    """

    data: MarketData
    settings: EnvSettings
    reward: WeightedReward
    prices: np.ndarray
    features: np.ndarray
    params: np.ndarray
    weights: np.ndarray
    observation_space: spaces.Box
    action_space: spaces.Space

    @classmethod
    def build(
        cls,
        data: MarketData,
        reward: WeightedReward | None = None,
        settings: EnvSettings | None = None,
        *,
        evaluation: bool = False,
    ) -> CompiledMarket:
        """Validate ``data`` against ``settings`` and compile it.

        Args:
            data: The split to trade.
            reward: Reward weights; default pnl only.
            settings: Market/episode settings; default :class:`EnvSettings`.
            evaluation: Whether the envs run whole-split evaluation episodes (then
                ``episode_length`` need not fit in the split).
        """
        start = time.perf_counter()
        settings = settings or EnvSettings()
        reward = reward or WeightedReward()
        settings.check_data(data, evaluation)
        market = cls(
            data=data,
            settings=settings,
            reward=reward,
            prices=price_rows(data),
            features=np.ascontiguousarray(data.features, dtype=np.float32),
            params=settings.params(reward.idle_threshold),
            weights=reward.weights,
            # a flat Box that also carries the layout for sequence extractors (env/spaces.py)
            observation_space=WindowedBox(
                settings.window, data.num_features, settings.account_size
            ),
            action_space=action_space_for(settings.action_mode),
        )
        _builds[0] += 1
        log.debug(
            "compiled market #%d: %d bars x %d features in %.2f ms",
            _builds[0],
            len(data),
            data.num_features,
            (time.perf_counter() - start) * 1e3,
        )
        return market

    # ------------------------------------------------------------------ observation layout
    @property
    def window(self) -> int:
        """Feature rows per observation."""
        return self.settings.window

    @property
    def num_features(self) -> int:
        """Feature columns per row."""
        return self.data.num_features

    @property
    def account_size(self) -> int:
        """Account-state entries at the end of the observation."""
        return self.settings.account_size

    @property
    def obs_size(self) -> int:
        """Length of the flat observation."""
        return self.window * self.num_features + self.account_size

    @property
    def initial_cash(self) -> float:
        """Starting equity in the margin currency."""
        return float(self.settings.initial_cash)

    @property
    def inverse(self) -> bool:
        """Whether the contract is inverse (the kernels' ``inverse`` flag)."""
        return self.settings.contract == "inverse"

    @property
    def close(self) -> np.ndarray:
        """Close prices (the row the observation and marks read)."""
        return self.prices[ROW_CLOSE]

    # ------------------------------------------------------------------ episodes
    def episode_bounds(self, rng: np.random.Generator, evaluation: bool) -> tuple[int, int]:
        """``(start, end)`` bar indices of a new episode, drawn from ``rng``.

        Evaluation, or ``episode_length`` null: from the first full window to the last bar.
        Otherwise a uniform start such that ``episode_length`` steps fit in the split.
        """
        first, last = self.window - 1, len(self.data) - 1
        length = self.settings.episode_length
        if evaluation or length is None:
            return first, last
        start = int(rng.integers(first, last - length + 1))
        return start, start + length
