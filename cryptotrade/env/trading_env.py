"""The single-instrument trading environment (gymnasium)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.actions import action_for_target
from cryptotrade.env.compiled import CompiledMarket
from cryptotrade.env.core import (
    BAD_ACTION,
    LEVEL,
    N_INFO_BASE,
    N_STATE,
    P_LEVERAGE,
    PAST_END,
    START,
    T,
    build_obs_nb,
    reset_env_nb,
)
from cryptotrade.env.reward import COMPONENTS, N_COMPONENTS, WeightedReward
from cryptotrade.env.settings import EnvSettings
from cryptotrade.env.steps import step_single_nb, write_info_nb
from cryptotrade.market.account import (
    BALANCE,
    EQUITY,
    MAX_TRADES_PER_STEP,
    N_TRADE_FIELDS,
    UNITS,
)
from cryptotrade.market.records import trades_to_records

BASE_KEYS = ("equity", "position", "units", "price", "inventory", "equity_quote")  # INFO_* order
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

    **Contracts** (``settings.contract``). ``linear`` (spot, USDT-margined perpetuals): the
    position is in base units (BTC), margin, PnL, fees and funding in the quote currency (USDT).
    ``inverse`` (coin-margined perpetuals: BitMEX XBTUSD, Deribit BTC-PERPETUAL): the position
    is in 1-USD contracts, ``initial_cash`` and all money in BTC, PnL ``contracts x (1/entry -
    1/exit)``, fees ``contracts / price x rate``, funding ``contracts / mark x rate``, the
    liquidation price BitMEX's (maintenance margin on the entry value). A target exposure ``x``
    holds ``x x leverage x equity x price`` contracts (fractional, so equity is exact to the
    satoshi rather than rounded to whole USD contracts).

    **Mark prices.** If ``data.mark_price`` is given (the mark at each bar's close), funding is
    valued at the mark at the bar's open, and a position is liquidated on the bar whose mark
    reaches its liquidation price (a long on the mark's low, a short on its high; the liquidation
    executes at that price, or at the mark at the open if it opened beyond it); fills always use
    traded prices. With mark candles (``data.mark_high``/``mark_low``) the bar's mark low/high
    are the candle's own; with mark closes only, the mark is taken to move linearly between
    consecutive closes, so an intrabar spike of the mark that reverts by the close is missed.
    Without a mark series, funding and liquidation use the traded open and the traded candle's
    low/high.

    ## Action Space
    By ``settings.action_mode``:

    | mode | space | actions |
    |---|---|---|
    | ``discrete4`` | Discrete(4) | 0 hold, 1 go long, 2 go short (both only from flat), 3 close |
    | ``discrete3`` | Discrete(3) | target side 0 short, 1 flat, 2 long (no rebalancing in a side) |
    | ``buy_sell_hold`` | Discrete(3) | 0 hold, 1 buy one inventory level, 2 sell one level |
    | ``continuous`` | Box(-1, 1, (1,)) | target exposure x leverage, traded beyond ``min_trade`` |

    A full position has notional ``leverage x equity``. Without ``allow_short`` short targets
    mean flat. An action outside the space (an index out of range, a value outside [-1, 1], NaN)
    raises ``ValueError`` naming the action and the space; nothing is traded. Notionals,
    equity and PnL in the observation are in the margin currency.

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
    | ``window*F + 2`` | unrealised PnL / equity (both in the margin currency) |
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
    ``data`` (:class:`MarketData`; ``None``: the default synthetic market of
    :mod:`cryptotrade.env.default_market`, so ``gymnasium.make("cryptotrade/Trading-v0")`` works),
    ``reward`` (:class:`WeightedReward`, default pnl only), ``settings`` (:class:`EnvSettings`),
    ``evaluation`` (bool), ``render_mode`` (None); or ``market=`` a
    :class:`~cryptotrade.env.compiled.CompiledMarket` shared with other envs.
    ``info`` every step: ``equity`` (margin currency), ``equity_quote`` (quote currency:
    ``equity x close`` for inverse contracts), ``position`` (signed notional / equity),
    ``units`` (signed base units or contracts), ``price`` (close), ``inventory`` and the reward
    components.

    ## Version History
    * v0: initial version; inverse contracts, mark prices, ``equity_quote`` and the action check
      added without changing linear results.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        data: MarketData | None = None,
        reward: WeightedReward | None = None,
        settings: EnvSettings | None = None,
        evaluation: bool = False,
        render_mode: str | None = None,
        *,
        market: CompiledMarket | None = None,
    ) -> None:
        if market is None:
            if data is None:
                from cryptotrade.env.default_market import default_market_data

                data = default_market_data()
            market = CompiledMarket.build(data, reward, settings, evaluation=evaluation)
        elif data is not None or reward is not None or settings is not None:
            raise TypeError("pass either market= or data/reward/settings, not both")
        elif not evaluation:
            market.settings.check_data(market.data, evaluation)  # the episode length must fit
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported (None only)")
        self.market = market
        self.settings = market.settings
        self.reward = market.reward
        self.data = market.data
        self.evaluation = evaluation
        self.render_mode = render_mode
        self.window = market.window
        self.num_features = market.num_features
        self.account_size = market.account_size
        self.initial_cash = market.initial_cash
        self.observation_space = market.observation_space
        self.action_space = market.action_space
        self._continuous = isinstance(self.action_space, spaces.Box)
        self._params = market.params
        size = market.obs_size
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

        Call it again after replacing one of the arrays (the trade log when it grows).
        """
        self._step_args = (
            self._state,
            self._ret_buf,
            self._comp,
            self.market.params,
            self.market.weights,
            self.market.prices,
            self.market.features,
            self._trade_buf,
            self._obs,
            self._info_vec,
            self._trade_log,
            self.market.inverse,
        )

    # ------------------------------------------------------------------ gymnasium API
    def episode_bounds(self) -> tuple[int, int]:
        """``(start, end)`` bar indices of a new episode, drawn from ``self.np_random``."""
        return self.market.episode_bounds(self.np_random, self.evaluation)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start, end = self.episode_bounds()
        market = self.market
        reset_env_nb(self._state, self._ret_buf, 0, market.params, start, end)
        self._comp[:] = 0.0
        self._info_vec[:] = 0.0
        self._logged = 0
        build_obs_nb(
            self._obs,
            0,
            self._state,
            0,
            market.params,
            market.features,
            market.close,
            market.inverse,
        )
        write_info_nb(self._info_vec, self._state, 0, market.close, market.inverse)
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
            if logged == BAD_ACTION:
                shown = np.asarray(action).tolist()  # 7 or [nan], not np.int64(7)
                raise ValueError(
                    f"action {shown!r} is outside the action space {self.action_space}"
                )
            assert logged == PAST_END
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
        """Marked equity in the margin currency (quote for linear, base for inverse contracts)."""
        return float(self._state[0, EQUITY])

    @property
    def equity_quote(self) -> float:
        """Marked equity in the quote currency (equity x close for inverse contracts)."""
        eq = self.equity
        if self.settings.contract == "inverse":
            return eq * float(self.market.close[self.current_index])
        return eq

    @property
    def balance(self) -> float:
        """Cash + realised PnL - fees - funding, in the margin currency."""
        return float(self._state[0, BALANCE])

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
