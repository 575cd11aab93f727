"""The single-instrument trading environment (gymnasium)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.actions import action_for_target, action_space_for
from cryptotrade.env.core import (
    LEVEL,
    N_INFO_BASE,
    N_STATE,
    P_LEVERAGE,
    ROW_CLOSE,
    START,
    T,
    build_obs_nb,
    reset_env_nb,
    step_single_nb,
    write_info_nb,
)
from cryptotrade.env.reward import COMPONENTS, N_COMPONENTS, WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.spaces import WindowedBox
from cryptotrade.market.account import (
    BALANCE,
    EQUITY,
    MAX_TRADES_PER_STEP,
    N_TRADE_FIELDS,
    PEAK,
    UNITS,
)
from cryptotrade.market.records import trades_to_records

BASE_KEYS = ("equity", "position", "units", "price", "inventory")  # the INFO_* order
REWARD_KEYS = tuple(f"reward/{c}" for c in COMPONENTS)
EPISODE_KEYS = tuple(f"episode/reward/{c}" for c in COMPONENTS)
STEP_KEYS = BASE_KEYS + REWARD_KEYS
EPISODE_END_KEYS = STEP_KEYS + EPISODE_KEYS


class TradingEnv(gym.Env):
    """Trade one crypto instrument bar by bar with an honest market model.

    ## Description
    The agent sees bar ``t`` only after it closed; its order fills at the open of bar ``t + 1``
    plus slippage, pays the taker (or maker) fee on the notional, holds the position through
    bar ``t + 1`` (funding at funding timestamps, liquidation if the bar's low/high reaches the
    liquidation price) and is marked to market at its close. Funding settled at a bar's open is
    charged on the position held into that open (longs pay a positive rate); a liquidation
    closes at the liquidation price (or the open, if it gapped through) with the liquidation fee
    and ends the episode. All accounting runs in the numba kernels of :mod:`cryptotrade.market`
    via :func:`cryptotrade.env.core.step_env_nb`; see that module for the order of events.

    ## Action Space
    By ``settings.action_mode``:

    | mode | space | actions |
    |---|---|---|
    | ``discrete4`` | Discrete(4) | 0 hold, 1 go long, 2 go short (both only from flat), 3 close |
    | ``discrete3`` | Discrete(3) | target side 0 short, 1 flat, 2 long (no rebalancing in a side) |
    | ``buy_sell_hold`` | Discrete(3) | 0 hold, 1 buy one inventory level, 2 sell one level |
    | ``continuous`` | Box(-1, 1, (1,)) | target exposure x leverage, traded beyond ``min_trade`` |

    A full position has notional ``leverage x equity``. Without ``allow_short`` short targets
    mean flat.

    ## Observation Space
    ``Box(-3.4e38, 3.4e38, (window * num_features + account_size,), float32)``, flat so SB3's
    ``MlpPolicy`` works; sequence extractors reshape the first part to ``(window, num_features)``.
    The space is a :class:`~cryptotrade.env.spaces.WindowedBox`: a Box that also carries
    ``window``, ``num_features`` and ``account_size``.

    | index | observation |
    |---|---|
    | ``0 .. window*F - 1`` | feature rows ``t - window + 1 .. t``, row-major (oldest first) |
    | ``window*F + 0`` | position side: -1 short, 0 flat, +1 long |
    | ``window*F + 1`` | entry price / close_t - 1 (0 when flat) |
    | ``window*F + 2`` | unrealised PnL / equity |
    | ``window*F + 3`` | log(1 + bars in the current position) |
    | next, if ``include_cash`` | free margin / equity = 1 - notional / (leverage x equity) |
    | next, if ``include_inventory`` | inventory level / inventory_levels |

    ## Rewards
    A weighted sum of the components of :class:`~cryptotrade.env.reward.WeightedReward`;
    ``info["reward/<name>"]`` holds each weighted contribution, and the last step of an episode
    adds the episode sums as ``info["episode/reward/<name>"]``.

    ## Starting State
    Flat with ``initial_cash``. Training: the first observed bar is drawn uniformly from
    ``self.np_random`` so that ``episode_length`` steps fit in the split (the first full window
    if ``episode_length`` is null). ``evaluation=True``: from the first full window to the last bar.

    ## Episode End
    Terminated on liquidation, equity <= 0 or a drawdown beyond ``max_drawdown``; truncated at the
    episode's last bar. Either way an open position is closed at that bar's close with slippage
    and fee, and appears in :attr:`trades`.

    ## Arguments
    ``data`` (:class:`MarketData`), ``reward`` (:class:`WeightedReward`, default pnl only),
    ``settings`` (:class:`EnvSettings`), ``evaluation`` (bool), ``render_mode`` (None).
    ``info`` every step: ``equity`` (quote currency), ``position`` (signed notional / equity),
    ``units`` (signed base units), ``price`` (close), ``inventory`` and the reward components.

    ## Version History
    * v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        data: MarketData,
        reward: WeightedReward | None = None,
        settings: EnvSettings | None = None,
        evaluation: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.settings = settings or EnvSettings()
        self.reward = reward or WeightedReward()
        self.settings.check_data(data, evaluation)
        self.data = data
        self.evaluation = evaluation
        self.render_mode = render_mode
        self.window = self.settings.window
        self.num_features = data.num_features
        self.account_size = self.settings.account_size
        self.initial_cash = float(self.settings.initial_cash)
        size = self.window * self.num_features + self.account_size
        # a flat Box that also carries the layout for sequence extractors (cryptotrade.env.spaces)
        self.observation_space = WindowedBox(self.window, self.num_features, self.account_size)
        self.action_space = action_space_for(self.settings.action_mode)
        self._continuous = isinstance(self.action_space, spaces.Box)
        # rows ROW_OPEN .. ROW_FUNDING; ROW_FILL is the reference price of a fill at each bar,
        # the open (the look-ahead canary test swaps it for a leaky one)
        self._prices = np.ascontiguousarray(
            np.stack(
                [
                    data.open,
                    data.high,
                    data.low,
                    data.close,
                    data.open,
                    data.funding_rate,
                ]
            ),
            dtype=np.float64,
        )
        self._close = self._prices[ROW_CLOSE]
        self._features = np.ascontiguousarray(data.features, dtype=np.float32)
        self._params = self.settings.params(self.reward.idle_threshold)
        self._weights = self.reward.weights
        # the kernels work on (n_envs, ...) arrays; a single env is row 0
        self._state = np.zeros((1, N_STATE), dtype=np.float64)
        self._ret_buf = np.zeros((1, self.reward.sharpe_window), dtype=np.float64)
        self._comp = np.zeros((1, N_COMPONENTS), dtype=np.float64)
        self._info_vec = np.zeros(N_INFO_BASE + 2 * N_COMPONENTS, dtype=np.float64)
        self._trade_buf = np.zeros((1, MAX_TRADES_PER_STEP, N_TRADE_FIELDS), dtype=np.float64)
        # the episode's trade log, written by the kernel and grown here when nearly full
        self._trade_log = np.zeros((256, N_TRADE_FIELDS), dtype=np.float64)
        self._logged = 0
        self._obs = np.zeros((1, size), dtype=np.float32)
        self._obs_row = self._obs[0]
        self._bind_kernel_args()

    def _bind_kernel_args(self) -> None:
        """Bind the step kernel's array arguments once (attribute lookups cost in ``step``).

        Call it again after replacing one of the arrays (the look-ahead tests do).
        """
        self._step_args = (
            self._state,
            self._ret_buf,
            self._comp,
            self._params,
            self._weights,
            self._prices,
            self._features,
            self._trade_buf,
            self._obs,
            self._info_vec,
            self._trade_log,
        )

    # ------------------------------------------------------------------ gymnasium API
    def episode_bounds(self) -> tuple[int, int]:
        """``(start, end)`` bar indices of a new episode, drawn from ``self.np_random``."""
        first, last = self.window - 1, len(self.data) - 1
        length = self.settings.episode_length
        if self.evaluation or length is None:
            return first, last
        start = int(self.np_random.integers(first, last - length + 1))
        return start, start + length

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start, end = self.episode_bounds()
        reset_env_nb(self._state, self._ret_buf, 0, self._params, start, end)
        self._comp[:] = 0.0
        self._info_vec[:] = 0.0
        self._logged = 0
        build_obs_nb(self._obs, 0, self._state, 0, self._params, self._features, self._close)
        write_info_nb(self._info_vec, self._state, 0, self._close)
        return self._obs[0].copy(), dict(zip(BASE_KEYS, self._info_vec.tolist(), strict=False))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        # the whole step is one numba call; Python only converts the action and builds the dict
        if not self._continuous:
            a = float(action)  # an int, numpy integer or 0-d array
        else:
            try:
                a = float(action[0])  # SB3 / Box.sample(): shape (1,)
            except (TypeError, IndexError):
                a = float(action)  # a plain number
        reward, terminated, truncated, logged = step_single_nb(a, *self._step_args)
        if logged < 0:
            raise RuntimeError(
                "TradingEnv.step called past the episode's last bar (or before any reset); "
                "call reset() when an episode ends"
            )
        self._logged = logged
        if logged + MAX_TRADES_PER_STEP > len(self._trade_log):
            self._trade_log = np.concatenate([self._trade_log, np.zeros_like(self._trade_log)])
            self._bind_kernel_args()
        keys = EPISODE_END_KEYS if terminated or truncated else STEP_KEYS
        info = dict(zip(keys, self._info_vec.tolist(), strict=False))
        return self._obs_row.copy(), reward, terminated, truncated, info

    # ------------------------------------------------------------------ public attributes
    @property
    def trades(self) -> np.ndarray:
        """Trades closed so far in this episode (:data:`~cryptotrade.market.TRADE_DTYPE`)."""
        return trades_to_records(self._trade_log[: self._logged], self.data.timestamps)

    @property
    def start_index(self) -> int:
        """Bar index (into ``data``) of the episode's first observation."""
        return int(self._state[0, START])

    @property
    def current_index(self) -> int:
        """Bar index of the current observation (the last closed bar)."""
        return int(self._state[0, T])

    @property
    def equity(self) -> float:
        """Marked equity in quote currency."""
        return float(self._state[0, EQUITY])

    @property
    def balance(self) -> float:
        """Cash + realised PnL - fees - funding."""
        return float(self._state[0, BALANCE])

    @property
    def peak_equity(self) -> float:
        """Highest marked equity of the episode."""
        return float(self._state[0, PEAK])

    def action_for_target(self, target: float) -> Any:
        """Action moving the position toward ``target`` exposure: -1 short, 0 flat, +1 long."""
        return action_for_target(
            self.settings.action_mode,
            target,
            float(self._state[0, UNITS]),
            float(self._state[0, LEVEL]),
            self.settings.inventory_levels,
        )

    @property
    def leverage(self) -> float:
        """Maximum leverage of a full position."""
        return float(self._params[P_LEVERAGE])
