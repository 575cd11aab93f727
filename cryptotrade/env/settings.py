"""Typed settings of the trading env, shared by :class:`~cryptotrade.env.trading_env.TradingEnv`
and :class:`~cryptotrade.env.factory.EnvFactory`."""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cryptotrade.data.market_data import MarketData
from cryptotrade.env.actions import mode_code
from cryptotrade.env.core import (
    N_ACCOUNT_OBS,
    N_PARAMS,
    P_ALLOW_SHORT,
    P_CASH,
    P_FEE,
    P_FUNDING,
    P_IDLE_T,
    P_INC_CASH,
    P_INC_INV,
    P_LEVELS,
    P_LEVERAGE,
    P_LIQ_FEE,
    P_MAX_DD,
    P_MIN_TRADE,
    P_MMR,
    P_MODE,
    P_SLIP_BPS,
    P_SLIP_RANGE,
    P_WINDOW,
)
from cryptotrade.errors import ConfigError, DataError

ActionMode = Literal["discrete4", "discrete3", "buy_sell_hold", "continuous"]
Contract = Literal["linear", "inverse"]


@dataclass(frozen=True)
class EnvSettings:
    """Market model and episode settings (see ``conf/env/*.yaml`` for units and presets).

    Args:
        window: Feature rows in each observation (the current bar and ``window - 1`` before it).
        action_mode: ``discrete4`` | ``discrete3`` | ``buy_sell_hold`` | ``continuous``.
        contract: ``linear`` (spot, USDT-margined: positions in base units, money in the quote
            currency) or ``inverse`` (coin-margined, BitMEX XBTUSD style: positions in 1-USD
            contracts, margin, PnL, fees and funding in the base currency, PnL
            ``contracts x (1/entry - 1/exit)``); see :mod:`cryptotrade.market.kernels`.
        initial_cash: Starting equity in the margin currency: quote (USDT) for ``linear``,
            base (BTC) for ``inverse``.
        taker_fee: Fee rate on notional of market orders (0.0004 = 4 bps).
        maker_fee: Fee rate on notional of limit orders.
        order_type: ``market`` (taker fee + slippage) or ``limit`` (maker fee, no slippage; an
            optimistic model that assumes a limit order at the open always fills).
        slippage_bps: Market-order slippage in basis points of the open price.
        slippage_range: Extra slippage as a fraction of the last seen bar's high - low.
        leverage: Maximum exposure as a multiple of equity (exposure 1 = leverage x equity).
        maintenance_margin: Maintenance margin rate; liquidation when equity < rate x notional.
        liquidation_fee: Fee rate on the notional closed by a liquidation.
        allow_short: Whether short positions are allowed (spot: false).
        funding: Whether perpetual funding (the data's ``funding_rate``) is settled.
        episode_length: Steps per training episode from a random start; ``None`` = the whole split.
        max_drawdown: Terminate when equity falls this fraction below its peak; ``None`` = never.
        min_trade: Continuous mode: ignore target changes smaller than this exposure.
        inventory_levels: ``buy_sell_hold``: inventory units per side (each = 1/levels exposure).
        include_cash: Append the free-margin ratio to the observation.
        include_inventory: Append the inventory level / levels to the observation.
    """

    window: int = 30
    action_mode: ActionMode = "discrete3"
    contract: Contract = "linear"
    initial_cash: float = 10_000.0
    taker_fee: float = 0.0004
    maker_fee: float = 0.0002
    order_type: Literal["market", "limit"] = "market"
    slippage_bps: float = 1.0
    slippage_range: float = 0.0
    leverage: float = 1.0
    maintenance_margin: float = 0.004
    liquidation_fee: float = 0.005
    allow_short: bool = True
    funding: bool = True
    episode_length: int | None = 720
    max_drawdown: float | None = None
    min_trade: float = 0.05
    inventory_levels: int = 1
    include_cash: bool = False
    include_inventory: bool = False

    def __post_init__(self) -> None:
        mode_code(self.action_mode)
        checks = [
            (self.window >= 1, f"env.window={self.window} must be >= 1"),
            (
                self.contract in ("linear", "inverse"),
                f"env.contract={self.contract!r} must be 'linear' or 'inverse'",
            ),
            (self.initial_cash > 0, f"env.initial_cash={self.initial_cash} must be > 0"),
            (0 <= self.taker_fee < 0.1, f"env.taker_fee={self.taker_fee} must be in [0, 0.1)"),
            (0 <= self.maker_fee < 0.1, f"env.maker_fee={self.maker_fee} must be in [0, 0.1)"),
            (
                self.order_type in ("market", "limit"),
                f"env.order_type={self.order_type!r} must be 'market' or 'limit'",
            ),
            (self.slippage_bps >= 0, f"env.slippage_bps={self.slippage_bps} must be >= 0"),
            (self.slippage_range >= 0, f"env.slippage_range={self.slippage_range} must be >= 0"),
            (self.leverage > 0, f"env.leverage={self.leverage} must be > 0"),
            (
                0 <= self.maintenance_margin * self.leverage < 1,
                f"env.maintenance_margin={self.maintenance_margin} x env.leverage={self.leverage} "
                "must be < 1 (else a full position is liquidated at once); lower either",
            ),
            (
                0 <= self.liquidation_fee < 0.1,
                f"env.liquidation_fee={self.liquidation_fee} must be in [0, 0.1)",
            ),
            (
                self.episode_length is None or self.episode_length >= 1,
                f"env.episode_length={self.episode_length} must be >= 1 or null (whole split)",
            ),
            (
                self.max_drawdown is None or 0 < self.max_drawdown <= 1,
                f"env.max_drawdown={self.max_drawdown} must be in (0, 1] or null (never)",
            ),
            (0 <= self.min_trade <= 1, f"env.min_trade={self.min_trade} must be in [0, 1]"),
            (
                self.inventory_levels >= 1,
                f"env.inventory_levels={self.inventory_levels} must be >= 1",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def account_size(self) -> int:
        """Number of account-state entries at the end of the observation."""
        return N_ACCOUNT_OBS + int(self.include_cash) + int(self.include_inventory)

    def params(self, idle_threshold: int = 0) -> np.ndarray:
        """The float64 params vector the numba step reads (``P_*`` indices)."""
        p = np.zeros(N_PARAMS, dtype=np.float64)
        limit = self.order_type == "limit"
        p[P_FEE] = self.maker_fee if limit else self.taker_fee
        p[P_SLIP_BPS] = 0.0 if limit else self.slippage_bps
        p[P_SLIP_RANGE] = 0.0 if limit else self.slippage_range
        p[P_LEVERAGE] = self.leverage
        p[P_MMR] = self.maintenance_margin
        p[P_LIQ_FEE] = self.liquidation_fee
        p[P_FUNDING] = float(self.funding)
        p[P_ALLOW_SHORT] = float(self.allow_short)
        p[P_MAX_DD] = math.inf if self.max_drawdown is None else self.max_drawdown
        p[P_CASH] = self.initial_cash
        p[P_MIN_TRADE] = self.min_trade
        p[P_LEVELS] = float(self.inventory_levels)
        p[P_MODE] = float(mode_code(self.action_mode))
        p[P_WINDOW] = float(self.window)
        p[P_INC_CASH] = float(self.include_cash)
        p[P_INC_INV] = float(self.include_inventory)
        p[P_IDLE_T] = float(idle_threshold)
        return p

    def check_data(self, data: MarketData, evaluation: bool) -> None:
        """Raise if ``data`` is too short for the window or the episode length, or not finite."""
        steps = len(data) - self.window  # steps from the first full window to the last bar
        if steps < 1:
            raise ConfigError(
                f"env.window={self.window} needs more than {self.window} bars but the "
                f"{data.name!r} split has {len(data)}; lower env.window or widen the split"
            )
        if not evaluation and self.episode_length is not None and self.episode_length > steps:
            raise ConfigError(
                f"env.episode_length={self.episode_length} is longer than the {steps} steps the "
                f"{data.name!r} split allows with env.window={self.window}; lower "
                "env.episode_length or set it to null (whole split)"
            )
        for name in ("open", "high", "low", "close", "mark_price", "mark_high", "mark_low"):
            arr = getattr(data, name, None)
            if arr is None:
                continue  # no mark series (or no mark candles): see env.compiled.price_rows
            if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise DataError(
                    f"MarketData.{name} of {data.name!r} has non-positive or NaN "
                    "prices; fix the data validation settings"
                )
        if not np.all(np.isfinite(data.features)):
            raise DataError(
                f"MarketData.features of {data.name!r} contains NaN/inf; drop the "
                "indicator warm-up rows in the feature pipeline"
            )
