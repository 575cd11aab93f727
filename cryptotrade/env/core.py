"""The numba step shared by :class:`TradingEnv` and the native VecEnv.

Both envs call the same :func:`step_env_nb` on a state row, so one TradingEnv and one column
of the VecEnv produce identical trajectories by construction. Timing of a step from bar ``t``
(the last closed bar the agent has seen) to bar ``n = t + 1``:

1. funding settles at the open of bar ``n`` on the position held during bar ``t``;
2. that position is liquidated at the open if the open gapped through its liquidation price;
3. the order decided at ``t`` fills at ``fill_price[n]`` (the open) plus slippage, with fees;
4. the new position is liquidated if bar ``n``'s low (long) / high (short) reaches its
   liquidation price;
5. the account is marked at ``close[n]``; the episode terminates on liquidation, equity <= 0 or
   the drawdown limit, and is truncated at its last bar; an open position is then closed at
   ``close[n]`` with slippage and fee;
6. reward components are computed and the observation of bar ``n`` is built.
"""

from __future__ import annotations

import math

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
    slipped_price_nb,
)

# env fields of the state row, after the account fields
T, START, END, POS_STEPS, FLAT_STEPS, LEVEL, RET_COUNT, EP_RETURN, EP_LENGTH, LOGGED = range(
    N_ACCOUNT, N_ACCOUNT + 10
)
EP_SUMS = N_ACCOUNT + 10  # then N_COMPONENTS episode sums of the weighted reward components
N_STATE = EP_SUMS + N_COMPONENTS

# params vector
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
) = range(17)
N_PARAMS = 17

MODE_DISCRETE4, MODE_DISCRETE3, MODE_BSH, MODE_CONTINUOUS = 0, 1, 2, 3
# rows of the (6, T) price array the step reads
ROW_OPEN, ROW_HIGH, ROW_LOW, ROW_CLOSE, ROW_FILL, ROW_FUNDING = range(6)
# the single env's info vector: these 5 values, then the components, then their episode sums
INFO_EQUITY, INFO_POSITION, INFO_UNITS, INFO_PRICE, INFO_INVENTORY = range(5)
N_INFO_BASE = 5
N_ACCOUNT_OBS = 4  # side, entry / price - 1, unrealised PnL / equity, log1p(steps in position)


@kernel
def exposure_nb(st: np.ndarray, i: int, price: float, leverage: float) -> float:
    """Signed notional / (equity * leverage) of row ``i``: -1 = fully short, +1 = fully long."""
    eq = st[i, EQUITY]
    if eq <= 0.0:
        return 0.0
    return st[i, UNITS] * price / (eq * leverage)


@kernel
def decode_target_nb(a: float, st: np.ndarray, i: int, params: np.ndarray, price: float) -> float:
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
    current = exposure_nb(st, i, price, params[P_LEVERAGE])
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
    out[j, k] = 0.0 if units == 0.0 else (1.0 if units > 0.0 else -1.0)
    out[j, k + 1] = 0.0 if units == 0.0 else st[i, ENTRY] / price - 1.0
    out[j, k + 2] = units * (price - st[i, ENTRY]) / eq
    out[j, k + 3] = math.log1p(st[i, POS_STEPS])
    k += 4
    if params[P_INC_CASH] > 0.0:  # free margin as a fraction of equity
        out[j, k] = 1.0 - abs(units) * price / (eq * params[P_LEVERAGE])
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
def _fill_order_nb(st, i, target, params, n, ref, bar_range, trades, n_tr):
    """Fill the order for ``target`` exposure at reference price ``ref`` of bar ``n``."""
    lev = params[P_LEVERAGE]
    eq = equity_nb(st[i, BALANCE], st[i, UNITS], st[i, ENTRY], ref)
    if eq <= 0.0:
        return 0.0, n_tr, False
    direction = np.sign(target * lev * eq / ref - st[i, UNITS])
    if direction == 0.0:
        return 0.0, n_tr, False
    px = slipped_price_nb(ref, direction, params[P_SLIP_BPS], params[P_SLIP_RANGE], bar_range)
    units = target * lev * eq / px
    if np.sign(units - st[i, UNITS]) != direction:
        # sized at the slipped price the order lands on the other side of the position: the
        # slippage eats the whole rebalance (filling it would sell at a buy-slipped price)
        return 0.0, n_tr, False
    return rebalance_nb(st, i, units, px, params[P_FEE], n, trades, n_tr)


@kernel
def _liquidation_check_nb(st, i, params, n, seg_open, low, high, trades, n_tr):
    """Liquidate row ``i`` if the segment reaches its liquidation price; ``(fee, n, hit)``."""
    liq = liquidation_price_nb(st[i, UNITS], st[i, ENTRY], st[i, BALANCE], params[P_MMR])
    hit, px = liquidation_hit_nb(st[i, UNITS], liq, seg_open, low, high)
    if not hit:
        return 0.0, n_tr, False
    fee, n_tr = liquidate_nb(st, i, px, params[P_LIQ_FEE], n, trades, n_tr)
    return fee, n_tr, True


@kernel
def _market_step_nb(st, i, a, params, open_, high, low, close, fill_price, funding, trades):
    """Events of bar ``n = t + 1`` up to the mark; ``(fees, funding paid, opened, liq, n_tr)``."""
    t = int(st[i, T])
    n = t + 1
    target = decode_target_nb(a, st, i, params, close[t])
    fees = 0.0
    paid = 0.0
    opened = 0
    n_tr = 0
    liquidated = False
    if params[P_FUNDING] > 0.0 and st[i, UNITS] != 0.0 and funding[n] != 0.0:
        paid = apply_funding_nb(st, i, open_[n], funding[n])
    if st[i, UNITS] != 0.0:  # a gap through the liquidation price at the open
        fees, n_tr, liquidated = _liquidation_check_nb(
            st, i, params, n, open_[n], open_[n], open_[n], trades, n_tr
        )
    if not liquidated and not math.isnan(target):
        f, n_tr, op = _fill_order_nb(
            st, i, target, params, n, fill_price[n], high[t] - low[t], trades, n_tr
        )
        fees += f
        if op:
            opened = 1
            st[i, POS_STEPS] = 0.0
        if params[P_MODE] == MODE_BSH:
            st[i, LEVEL] = round(target * params[P_LEVELS])
    if not liquidated and st[i, UNITS] != 0.0:  # the new position through bar n's range
        f, n_tr, liquidated = _liquidation_check_nb(
            st, i, params, n, open_[n], low[n], high[n], trades, n_tr
        )
        fees += f
    return fees, paid, opened, liquidated, n_tr


@inlined_kernel
def step_env_nb(
    st, ret_buf, comp, i, a, params, weights, open_, high, low, close, fill_price, funding, trades
):
    """Advance row ``i`` by one bar (see the module docstring for the order of events).

    Args:
        st: State array ``(n_envs, N_STATE)`` (account + env fields); row ``i`` is updated.
        ret_buf: Ring buffers of step log returns for the Sharpe component, ``(n_envs, W)``.
        comp: Output, weighted reward components of this step, ``(n_envs, N_COMPONENTS)``.
        i: The env's row.
        a: The action (index for discrete modes, target exposure for continuous).
        params: Params vector (``P_*``).
        weights: Reward weights in ``COMPONENTS`` order.
        open_, high, low, close: Bar prices, float64.
        fill_price: Reference price of a fill at each bar (the open; tests swap it).
        funding: Funding rate settled at each bar's open.
        trades: Output buffer of trades closed this step, ``(n_envs, MAX_TRADES_PER_STEP, F)``.

    Returns:
        ``(reward, terminated, truncated, n_trades)``.
    """
    t = int(st[i, T])
    n = t + 1
    eq_before = st[i, EQUITY]
    fees, paid, opened, liquidated, n_tr = _market_step_nb(
        st, i, a, params, open_, high, low, close, fill_price, funding, trades
    )
    eq = mark_nb(st, i, close[n])
    st[i, T] = n
    terminated = liquidated or eq <= 0.0 or (1.0 - eq / st[i, PEAK]) >= params[P_MAX_DD]
    truncated = (not terminated) and n >= int(st[i, END])
    if (terminated or truncated) and st[i, UNITS] != 0.0:
        direction = -1.0 if st[i, UNITS] > 0.0 else 1.0
        px = slipped_price_nb(
            close[n], direction, params[P_SLIP_BPS], params[P_SLIP_RANGE], high[n] - low[n]
        )
        f, n_tr, _ = rebalance_nb(st, i, 0.0, px, params[P_FEE], n, trades, n_tr)
        fees += f
        eq = mark_nb(st, i, close[n])
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
    bench = math.log(close[n] / close[t]) if weights[C_BENCHMARK] != 0.0 else 0.0
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
def write_info_nb(info: np.ndarray, st: np.ndarray, i: int, close: np.ndarray) -> None:
    """The base info values of row ``i`` (equity, position = notional / equity, units, ...)."""
    price = close[int(st[i, T])]
    eq = st[i, EQUITY]
    info[INFO_EQUITY] = eq
    info[INFO_POSITION] = st[i, UNITS] * price / eq if eq > 0.0 else 0.0
    info[INFO_UNITS] = st[i, UNITS]
    info[INFO_PRICE] = price
    info[INFO_INVENTORY] = st[i, LEVEL]


@kernel
def step_single_nb(a, st, ret_buf, comp, params, weights, prices, features, trades, obs, info, log):
    """One :class:`TradingEnv` step in one numba call: step, observation, info and trade log.

    ``info`` receives the base values, this step's weighted components and the running episode
    sums (``N_INFO_BASE + 2 * N_COMPONENTS`` floats). Closed trades are appended to ``log`` at
    row ``st[0, LOGGED]``; the caller keeps ``MAX_TRADES_PER_STEP`` free rows in it (a full log
    is left unchanged rather than overrun).

    Returns:
        ``(reward, terminated, truncated, rows used in log)``; rows ``-1`` and nothing changed
        when the episode is past its last bar (or was never reset): bar ``t + 1`` may not exist.
    """
    if st[0, T] >= st[0, END]:  # no bounds checks here: stepping on would read past the data
        return 0.0, False, True, -1
    r, term, trunc, n_tr = step_env_nb(
        st,
        ret_buf,
        comp,
        0,
        a,
        params,
        weights,
        prices[ROW_OPEN],
        prices[ROW_HIGH],
        prices[ROW_LOW],
        prices[ROW_CLOSE],
        prices[ROW_FILL],
        prices[ROW_FUNDING],
        trades,
    )
    build_obs_nb(obs, 0, st, 0, params, features, prices[ROW_CLOSE])
    write_info_nb(info, st, 0, prices[ROW_CLOSE])
    for c in range(N_COMPONENTS):
        info[N_INFO_BASE + c] = comp[0, c]
        info[N_INFO_BASE + N_COMPONENTS + c] = st[0, EP_SUMS + c]
    logged = int(st[0, LOGGED])
    if logged + n_tr > log.shape[0]:  # never write out of bounds (no bounds checks here)
        return r, term, trunc, logged
    for k in range(n_tr):
        for f in range(trades.shape[2]):
            log[logged + k, f] = trades[0, k, f]
    st[0, LOGGED] = logged + n_tr
    return r, term, trunc, logged + n_tr


@kernel
def step_vec_nb(
    actions,
    states,
    ret_bufs,
    comps,
    comp_sums,
    params,
    weights,
    prices,
    features,
    next_start,
    next_end,
    trades,
    obs,
    rewards,
    dones,
    truncated,
    term_obs,
    ep_returns,
    ep_lengths,
):
    """Step every env of the native VecEnv and auto-reset the finished ones.

    A finished env's final observation goes to ``term_obs[i]``, its episode return/length and
    reward component sums to ``ep_returns``/``ep_lengths``/``comp_sums[i]``, and it restarts at
    ``next_start[i]``..``next_end[i]`` (drawn in Python from that env's own generator).
    ``actions`` may be any numeric dtype (SB3 passes int64 for discrete, float32 for Box).

    Returns:
        The number of envs whose episode ended (``dones[i]`` marks them).
    """
    n_done = 0
    close = prices[ROW_CLOSE]
    for i in range(states.shape[0]):
        r, term, trunc, _ = step_env_nb(
            states,
            ret_bufs,
            comps,
            i,
            float(actions[i]),
            params,
            weights,
            prices[ROW_OPEN],
            prices[ROW_HIGH],
            prices[ROW_LOW],
            close,
            prices[ROW_FILL],
            prices[ROW_FUNDING],
            trades,
        )
        rewards[i] = r
        dones[i] = term or trunc
        truncated[i] = trunc
        if term or trunc:
            n_done += 1
            build_obs_nb(term_obs, i, states, i, params, features, close)
            ep_returns[i] = states[i, EP_RETURN]
            ep_lengths[i] = states[i, EP_LENGTH]
            for c in range(N_COMPONENTS):
                comp_sums[i, c] = states[i, EP_SUMS + c]
            reset_env_nb(states, ret_bufs, i, params, next_start[i], next_end[i])
        build_obs_nb(obs, i, states, i, params, features, close)
    return n_done
