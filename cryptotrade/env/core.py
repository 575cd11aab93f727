"""The numba step shared by :class:`~cryptotrade.env.trading_env.TradingEnv` and the native VecEnv.

Both envs call the same :func:`step_env_nb` on a state row, so one TradingEnv and one column
of the VecEnv produce identical trajectories by construction. Timing of a step from bar ``t``
(the last closed bar the agent has seen) to bar ``n = t + 1``:

1. funding settles at the open of bar ``n`` on the position held during bar ``t``, valued at
   the mark price at that open;
2. that position is liquidated at the open if the mark at the open is through its liquidation
   price;
3. the order decided at ``t`` fills at ``fill_price[n]`` (the open) plus slippage, with fees;
4. the new position is liquidated if bar ``n``'s mark low (long) / mark high (short) reaches its
   liquidation price (at that price);
5. the account is marked at ``close[n]``; the episode terminates on liquidation, equity <= 0 or
   the drawdown limit, and is truncated at its last bar; an open position is then closed at
   ``close[n]`` with slippage and fee;
6. reward components are computed and the observation of bar ``n`` is built.

The mark price rows (``ROW_MARK_*``) are built once by
:func:`~cryptotrade.env.compiled.price_rows`, so funding and liquidation follow the mark as
exchanges do while fills always use traded prices. The bar's mark low/high is, by what the data
carries: the mark candle's own low/high (``MarketData.mark_low``/``mark_high``); with mark
closes only, the range of a mark moving linearly between the previous and this close; without a
mark series, the traded candle's low/high (and the traded open as the mark at the open).

The contract type only switches the formulas of :mod:`cryptotrade.market.kernels`: the
``inverse`` flag is an argument of the entry kernels in :mod:`cryptotrade.env.steps`. The
VecEnv's kernel makes it a compile-time constant (``numba.literally``), so numba compiles one
specialisation per contract and the linear loop carries no branch on it; the single env and the
oracle step one row per call through :func:`step_one_env_nb`, compiled once for both contracts
(numba's compile time, not the step, dominates there).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cryptotrade.env.reward import (
    C_BENCHMARK,
    C_SHARPE,
    N_COMPONENTS,
    reward_components_nb,
    rolling_sharpe_nb,
)
from cryptotrade.market.account import (
    BALANCE,
    ENTRY,
    EQUITY,
    F_PNL,
    N_ACCOUNT,
    PEAK,
    UNITS,
    apply_funding_nb,
    liquidate_nb,
    mark_nb,
    rebalance_nb,
    reset_account_nb,
)
from cryptotrade.market.jit import inlined_kernel, kernel
from cryptotrade.market.kernels import (
    equity_nb,
    liquidation_hit_nb,
    liquidation_price_nb,
    pnl_nb,
    position_value_nb,
    slipped_price_nb,
    target_units_nb,
)


class EnvStateLayout(NamedTuple):
    """Env fields of the state row, after the account's ``N_ACCOUNT`` fields (vectorbt-style:
    an immutable tuple of indices; the kernels read the module constants below, plain ints
    numba folds in at compile time)."""

    t: int  # the last closed bar the agent has seen
    start: int  # first and last bar of the episode
    end: int
    pos_steps: int  # steps in the current position / flat (idle penalty)
    flat_steps: int
    level: int  # buy_sell_hold inventory level
    ret_count: int  # step returns in the rolling Sharpe buffer
    ep_return: int  # episode return and length (the VecEnv's episode info)
    ep_length: int
    logged: int  # trades written to the episode's trade log
    ep_sums: int  # first of N_COMPONENTS episode sums of the weighted reward components


ENV_STATE = EnvStateLayout(*range(N_ACCOUNT, N_ACCOUNT + len(EnvStateLayout._fields)))
T, START, END, POS_STEPS, FLAT_STEPS, LEVEL, RET_COUNT, EP_RETURN, EP_LENGTH, LOGGED, EP_SUMS = (
    ENV_STATE
)
N_STATE = EP_SUMS + N_COMPONENTS


class ParamsLayout(NamedTuple):
    """Indices of the float64 params vector (:meth:`EnvSettings.params` fills it)."""

    fee: int  # fee rate of the order type
    slip_bps: int  # slippage, basis points of the fill price
    slip_range: int  # extra slippage, fraction of the last seen bar's range
    leverage: int
    mmr: int  # maintenance margin rate
    liq_fee: int  # liquidation fee rate
    funding: int  # 1.0: settle funding
    allow_short: int  # 1.0: shorts allowed
    max_dd: int  # drawdown limit (inf: none)
    cash: int  # initial cash
    min_trade: int  # continuous mode: smallest exposure change traded
    levels: int  # buy_sell_hold inventory levels
    mode: int  # MODE_* action mode
    window: int  # observation window
    inc_cash: int  # 1.0: the observation carries free margin / equity
    inc_inv: int  # 1.0: the observation carries the inventory level
    idle_t: int  # idle threshold of the idle penalty


PARAMS = ParamsLayout(*range(len(ParamsLayout._fields)))
(
    P_FEE,
    P_SLIP_BPS,
    P_SLIP_RANGE,
    P_LEVERAGE,
    P_MMR,
    P_LIQ_FEE,
    P_FUNDING,
    P_ALLOW_SHORT,
    P_MAX_DD,
    P_CASH,
    P_MIN_TRADE,
    P_LEVELS,
    P_MODE,
    P_WINDOW,
    P_INC_CASH,
    P_INC_INV,
    P_IDLE_T,
) = PARAMS
N_PARAMS = len(PARAMS)

MODE_DISCRETE4, MODE_DISCRETE3, MODE_BSH, MODE_CONTINUOUS = 0, 1, 2, 3
# rows of the (N_PRICE_ROWS, T) price array the step reads; the mark rows are the mark price at
# each bar's open and its low/high through the bar (mark candles' own low/high, else the range of
# the two mark closes, else the traded open/low/high: see env.compiled.price_rows)
ROW_OPEN, ROW_HIGH, ROW_LOW, ROW_CLOSE, ROW_FILL, ROW_FUNDING = range(6)
ROW_MARK_OPEN, ROW_MARK_LOW, ROW_MARK_HIGH = 6, 7, 8
N_PRICE_ROWS = 9
# the single env's info vector: these 6 values, then the components, then their episode sums
INFO_EQUITY, INFO_POSITION, INFO_UNITS, INFO_PRICE, INFO_INVENTORY, INFO_EQUITY_QUOTE = range(6)
N_INFO_BASE = 6
# step_single_nb's "rows used" / step_vec_nb's count when nothing was stepped
PAST_END = -1  # single env: the episode has no bar t + 1
BAD_ACTION = -2  # single env: the action is outside the action space
N_ACCOUNT_OBS = 4  # side, entry / price - 1, unrealised PnL / equity, log1p(steps in position)


@kernel
def exposure_nb(st: np.ndarray, i: int, price: float, leverage: float, inverse: bool) -> float:
    """Signed notional / (equity * leverage) of row ``i``: -1 = fully short, +1 = fully long."""
    eq = st[i, EQUITY]
    if eq <= 0.0:
        return 0.0
    return position_value_nb(st[i, UNITS], price, inverse) / (eq * leverage)


@kernel
def valid_action_nb(a: float, params: np.ndarray) -> bool:
    """Whether ``a`` is in the action space: an index ``0 .. n-1`` or a number in [-1, 1].

    NaN fails both tests (every comparison with NaN is false).
    """
    mode = int(params[P_MODE])
    if mode == MODE_CONTINUOUS:
        return -1.0 <= a <= 1.0
    n = 4.0 if mode == MODE_DISCRETE4 else 3.0
    return 0.0 <= a < n and a == math.floor(a)


@kernel
def decode_target_nb(
    a: float, st: np.ndarray, i: int, params: np.ndarray, price: float, inverse: bool
) -> float:
    """Target exposure in [-1, 1] for action ``a``; NaN means "leave the position alone"."""
    mode = int(params[P_MODE])
    units = st[i, UNITS]
    short_ok = params[P_ALLOW_SHORT] > 0.0
    if mode == MODE_DISCRETE4:  # 0 hold, 1 long, 2 short (both from flat only), 3 close
        k = int(a)
        if k == 1 and units == 0.0:
            return 1.0
        if k == 2 and units == 0.0 and short_ok:
            return -1.0
        if k == 3 and units != 0.0:
            return 0.0
        return np.nan
    if mode == MODE_DISCRETE3:  # 0 short, 1 flat, 2 long; no rebalancing within a side
        side = float(int(a) - 1)
        if side < 0.0 and not short_ok:
            side = 0.0
        current = 0.0 if units == 0.0 else (1.0 if units > 0.0 else -1.0)
        return np.nan if side == current else side
    if mode == MODE_BSH:  # 0 hold, 1 buy one inventory level, 2 sell one
        levels = params[P_LEVELS]
        k = int(a)
        level = st[i, LEVEL] + (1.0 if k == 1 else (-1.0 if k == 2 else 0.0))
        level = min(max(level, -levels if short_ok else 0.0), levels)
        return np.nan if level == st[i, LEVEL] else level / levels
    # continuous target exposure, rebalanced only beyond the min_trade band (closing to flat
    # always trades, or a drifted remainder smaller than the band could never be closed)
    target = min(max(a, -1.0), 1.0)
    if not short_ok:
        target = max(target, 0.0)
    if target == 0.0:
        return 0.0 if units != 0.0 else np.nan
    current = exposure_nb(st, i, price, params[P_LEVERAGE], inverse)
    if target == current or abs(target - current) < params[P_MIN_TRADE]:
        return np.nan
    return target


@inlined_kernel
def build_obs_nb(
    out: np.ndarray,
    j: int,
    st: np.ndarray,
    i: int,
    params: np.ndarray,
    features: np.ndarray,
    close: np.ndarray,
    inverse: bool,
) -> None:
    """Write the observation of row ``i``'s current bar ``t`` into ``out[j]``.

    The last ``window`` feature rows, then the account state. Nothing from bars after ``t`` is
    read: the feature rows end at ``t`` and prices at ``close[t]``.
    """
    t = int(st[i, T])
    window = int(params[P_WINDOW])
    k = window * features.shape[1]
    # flat views of C-contiguous rows: a 1-D copy loop vectorises (3-4x the nested loop)
    src = features[t - window + 1 : t + 1].reshape(k)
    dst = out[j]
    for m in range(k):
        dst[m] = src[m]
    price = close[t]
    units = st[i, UNITS]
    eq = max(st[i, EQUITY], 1e-12)
    flat = units == 0.0
    out[j, k] = 0.0 if flat else (1.0 if units > 0.0 else -1.0)
    out[j, k + 1] = 0.0 if flat else st[i, ENTRY] / price - 1.0
    out[j, k + 2] = 0.0 if flat else pnl_nb(units, st[i, ENTRY], price, inverse) / eq
    out[j, k + 3] = math.log1p(st[i, POS_STEPS])
    k += 4
    if params[P_INC_CASH] > 0.0:  # free margin as a fraction of equity
        notional = abs(position_value_nb(units, price, inverse))
        out[j, k] = 1.0 - notional / (eq * params[P_LEVERAGE])
        k += 1
    if params[P_INC_INV] > 0.0:
        out[j, k] = st[i, LEVEL] / params[P_LEVELS]


@kernel
def reset_env_nb(
    st: np.ndarray, ret_buf: np.ndarray, i: int, params: np.ndarray, start: int, end: int
) -> None:
    """Start row ``i``'s episode at bar ``start`` (first observed bar) ending at bar ``end``."""
    st[i, :] = 0.0
    reset_account_nb(st, i, params[P_CASH])
    st[i, T] = start
    st[i, START] = start
    st[i, END] = end
    ret_buf[i, :] = 0.0


@kernel
def _fill_order_nb(st, i, target, params, n, ref, bar_range, trades, n_tr, inverse):
    """Fill the order for ``target`` exposure at reference price ``ref`` of bar ``n``."""
    lev = params[P_LEVERAGE]
    eq = equity_nb(st[i, BALANCE], st[i, UNITS], st[i, ENTRY], ref, inverse)
    if eq <= 0.0:
        return 0.0, n_tr, False
    direction = np.sign(target_units_nb(target, lev, eq, ref, inverse) - st[i, UNITS])
    if direction == 0.0:
        return 0.0, n_tr, False
    px = slipped_price_nb(ref, direction, params[P_SLIP_BPS], params[P_SLIP_RANGE], bar_range)
    units = target_units_nb(target, lev, eq, px, inverse)
    if np.sign(units - st[i, UNITS]) != direction:
        # sized at the slipped price the order lands on the other side of the position: the
        # slippage eats the whole rebalance (filling it would sell at a buy-slipped price)
        return 0.0, n_tr, False
    return rebalance_nb(st, i, units, px, params[P_FEE], n, trades, n_tr, inverse)


@kernel
def _liquidation_check_nb(st, i, params, n, seg_open, low, high, trades, n_tr, inverse):
    """Liquidate row ``i`` if the segment reaches its liquidation price; ``(fee, n, hit)``."""
    liq = liquidation_price_nb(st[i, UNITS], st[i, ENTRY], st[i, BALANCE], params[P_MMR], inverse)
    hit, px = liquidation_hit_nb(st[i, UNITS], liq, seg_open, low, high)
    if not hit:
        return 0.0, n_tr, False
    fee, n_tr = liquidate_nb(st, i, px, params[P_LIQ_FEE], n, trades, n_tr, inverse)
    return fee, n_tr, True


@kernel
def _market_step_nb(st, i, a, params, prices, trades, inverse):
    """Events of bar ``n = t + 1`` up to the mark; ``(fees, funding paid, opened, liq, n_tr)``."""
    t = int(st[i, T])
    n = t + 1
    high, low, close = prices[ROW_HIGH], prices[ROW_LOW], prices[ROW_CLOSE]
    mark_open = prices[ROW_MARK_OPEN, n]
    target = decode_target_nb(a, st, i, params, close[t], inverse)
    fees = 0.0
    paid = 0.0
    opened = 0
    n_tr = 0
    liquidated = False
    rate = prices[ROW_FUNDING, n]
    if params[P_FUNDING] > 0.0 and st[i, UNITS] != 0.0 and rate != 0.0:
        paid = apply_funding_nb(st, i, mark_open, rate, inverse)
    if st[i, UNITS] != 0.0:  # a gap of the mark through the liquidation price at the open
        fees, n_tr, liquidated = _liquidation_check_nb(
            st, i, params, n, mark_open, mark_open, mark_open, trades, n_tr, inverse
        )
    if not liquidated and not math.isnan(target):
        f, n_tr, op = _fill_order_nb(
            st, i, target, params, n, prices[ROW_FILL, n], high[t] - low[t], trades, n_tr, inverse
        )
        fees += f
        if op:
            opened = 1
            st[i, POS_STEPS] = 0.0
        if params[P_MODE] == MODE_BSH:
            st[i, LEVEL] = round(target * params[P_LEVELS])
    if not liquidated and st[i, UNITS] != 0.0:  # the new position through bar n's mark range
        f, n_tr, liquidated = _liquidation_check_nb(
            st,
            i,
            params,
            n,
            mark_open,
            prices[ROW_MARK_LOW, n],
            prices[ROW_MARK_HIGH, n],
            trades,
            n_tr,
            inverse,
        )
        fees += f
    return fees, paid, opened, liquidated, n_tr


@inlined_kernel
def step_env_nb(st, ret_buf, comp, i, a, params, weights, prices, trades, inverse):
    """Advance row ``i`` by one bar (see the module docstring for the order of events).

    Args:
        st: State array ``(n_envs, N_STATE)`` (account + env fields); row ``i`` is updated.
        ret_buf: Ring buffers of step log returns for the Sharpe component, ``(n_envs, W)``.
        comp: Output, weighted reward components of this step, ``(n_envs, N_COMPONENTS)``.
        i: The env's row.
        a: The action (index for discrete modes, target exposure for continuous).
        params: Params vector (``P_*``).
        weights: Reward weights in ``COMPONENTS`` order.
        prices: ``(N_PRICE_ROWS, T)`` float64 rows ``ROW_*``: open, high, low, close, the
            reference price of a fill at each bar (the open; tests swap it), the funding rate
            settled at each bar's open, and the mark price rows.
        trades: Output buffer of trades closed this step, ``(n_envs, MAX_TRADES_PER_STEP, F)``.
        inverse: Inverse contract (see :mod:`cryptotrade.market.kernels`).

    Returns:
        ``(reward, terminated, truncated, n_trades)``.
    """
    t = int(st[i, T])
    n = t + 1
    high, low, close = prices[ROW_HIGH], prices[ROW_LOW], prices[ROW_CLOSE]
    eq_before = st[i, EQUITY]
    fees, paid, opened, liquidated, n_tr = _market_step_nb(
        st, i, a, params, prices, trades, inverse
    )
    eq = mark_nb(st, i, close[n], inverse)
    st[i, T] = n
    terminated = liquidated or eq <= 0.0 or (1.0 - eq / st[i, PEAK]) >= params[P_MAX_DD]
    truncated = (not terminated) and n >= int(st[i, END])
    if (terminated or truncated) and st[i, UNITS] != 0.0:
        direction = -1.0 if st[i, UNITS] > 0.0 else 1.0
        px = slipped_price_nb(
            close[n], direction, params[P_SLIP_BPS], params[P_SLIP_RANGE], high[n] - low[n]
        )
        f, n_tr, _ = rebalance_nb(st, i, 0.0, px, params[P_FEE], n, trades, n_tr, inverse)
        fees += f
        eq = mark_nb(st, i, close[n], inverse)
    if st[i, UNITS] == 0.0:
        st[i, LEVEL] = 0.0
        st[i, POS_STEPS] = 0.0
        st[i, FLAT_STEPS] += 1.0
    else:
        st[i, POS_STEPS] += 1.0
        st[i, FLAT_STEPS] = 0.0
    profit = 0.0
    for k in range(n_tr):
        if trades[i, k, F_PNL] > 0.0:
            profit += trades[i, k, F_PNL]
    # log return; a wiped-out account is floored so the reward stays finite
    log_ret = math.log(max(eq, 1e-9 * params[P_CASH]) / eq_before)
    # components with weight 0 contribute 0: skip their cost (the Sharpe window especially)
    sharpe = 0.0
    if weights[C_SHARPE] != 0.0:
        w = ret_buf.shape[1]
        ret_buf[i, int(st[i, RET_COUNT]) % w] = log_ret
        st[i, RET_COUNT] += 1.0
        sharpe = rolling_sharpe_nb(ret_buf, i, int(st[i, RET_COUNT]))
    drawdown = 1.0 - eq / st[i, PEAK]
    idle = st[i, FLAT_STEPS] > params[P_IDLE_T]
    # buy & hold of the base asset, in the margin currency: an inverse account's margin already
    # is the base asset, so holding it returns 0 there
    bench = 0.0
    if weights[C_BENCHMARK] != 0.0 and not inverse:
        bench = math.log(close[n] / close[t])
    reward = reward_components_nb(
        comp,
        i,
        weights,
        log_ret,
        drawdown,
        sharpe,
        fees,
        bench,
        idle,
        profit,
        opened,
        paid,
        liquidated,
        eq_before,
    )
    st[i, EP_RETURN] += reward
    st[i, EP_LENGTH] += 1.0
    for c in range(N_COMPONENTS):
        st[i, EP_SUMS + c] += comp[i, c]
    return reward, terminated, truncated, n_tr


@kernel
def step_one_env_nb(st, ret_buf, comp, i, a, params, weights, prices, trades, inverse):
    """:func:`step_env_nb` as a function numba calls rather than inlines, for callers that step
    one row per call (the single env, the oracle).

    They share one compiled copy, for both contracts (``inverse`` stays a runtime argument):
    compiling the step is what costs there, not a call or a branch per step. Inlining and a
    constant contract flag pay only in the VecEnv's loop over envs.
    """
    return step_env_nb(st, ret_buf, comp, i, a, params, weights, prices, trades, inverse)
