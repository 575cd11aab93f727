"""The entry kernels of the step: one TradingEnv step, and all envs of the native VecEnv.

:func:`step_single_nb` and :func:`step_vec_nb` wrap the step of :mod:`cryptotrade.env.core`
with the observation, the info vector, the trade log and auto-reset.

:func:`step_vec_nb` inlines :func:`~cryptotrade.env.core.step_env_nb` into its loop over envs
and makes its ``inverse`` argument a compile-time constant (``numba.literally``): numba
compiles one specialisation per contract type, so the linear loop carries no branch on it.
Python calls it through :data:`STEP_VEC`, one kernel per contract with the flag fixed, because
calling a ``literally`` function from Python would re-dispatch on every call.

:func:`step_single_nb` calls :func:`~cryptotrade.env.core.step_one_env_nb` with the contract
flag at run time: one compiled kernel for both contracts (and shared with the oracle), which
halves what a first run compiles for ~0.1 us on a ~4 us ``TradingEnv.step``.
"""

from __future__ import annotations

import numpy as np
from numba import literally

from cryptotrade.env.core import (
    BAD_ACTION,
    END,
    EP_LENGTH,
    EP_RETURN,
    EP_SUMS,
    INFO_EQUITY,
    INFO_EQUITY_QUOTE,
    INFO_INVENTORY,
    INFO_POSITION,
    INFO_PRICE,
    INFO_UNITS,
    LEVEL,
    LOGGED,
    N_INFO_BASE,
    PAST_END,
    ROW_CLOSE,
    T,
    build_obs_nb,
    reset_env_nb,
    step_env_nb,
    step_one_env_nb,
    valid_action_nb,
)
from cryptotrade.env.reward import N_COMPONENTS
from cryptotrade.market.account import EQUITY, UNITS
from cryptotrade.market.jit import kernel
from cryptotrade.market.kernels import position_value_nb


@kernel
def write_info_nb(
    info: np.ndarray, st: np.ndarray, i: int, close: np.ndarray, inverse: bool
) -> None:
    """The base info values of row ``i`` (equity, position = notional / equity, units, ...).

    Equity is in the margin currency; ``INFO_EQUITY_QUOTE`` is the same equity in the quote
    currency (``equity * close`` for inverse contracts, ``equity`` for linear ones).
    """
    price = close[int(st[i, T])]
    eq = st[i, EQUITY]
    info[INFO_EQUITY] = eq
    value = position_value_nb(st[i, UNITS], price, inverse)
    info[INFO_POSITION] = value / eq if eq > 0.0 else 0.0
    info[INFO_UNITS] = st[i, UNITS]
    info[INFO_PRICE] = price
    info[INFO_INVENTORY] = st[i, LEVEL]
    info[INFO_EQUITY_QUOTE] = eq * price if inverse else eq


@kernel
def step_single_nb(
    a, st, ret_buf, comp, params, weights, prices, features, trades, obs, info, log, inverse
):
    """One :class:`~cryptotrade.env.trading_env.TradingEnv` step in one numba call: step,
    observation, info and trade log.

    ``info`` receives the base values, this step's weighted components and the running episode
    sums (``N_INFO_BASE + 2 * N_COMPONENTS`` floats). Closed trades are appended to ``log`` at
    row ``st[0, LOGGED]``; the caller keeps ``MAX_TRADES_PER_STEP`` free rows in it (a full log
    is left unchanged rather than overrun).

    Returns:
        ``(reward, terminated, truncated, rows used in log)``; nothing changes and rows is
        ``PAST_END`` when the episode is past its last bar (or was never reset: bar ``t + 1``
        may not exist), ``BAD_ACTION`` when ``a`` is outside the action space.
    """
    if st[0, T] >= st[0, END]:  # no bounds checks here: stepping on would read past the data
        return 0.0, False, True, PAST_END
    if not valid_action_nb(a, params):
        return 0.0, False, False, BAD_ACTION
    # a runtime row index: a literal 0 would compile the step once more for that constant
    r, term, trunc, n_tr = step_one_env_nb(
        st, ret_buf, comp, np.int64(0), a, params, weights, prices, trades, inverse
    )
    build_obs_nb(obs, 0, st, 0, params, features, prices[ROW_CLOSE], inverse)
    write_info_nb(info, st, 0, prices[ROW_CLOSE], inverse)
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
    inverse,
):
    """Step every env of the native VecEnv and auto-reset the finished ones.

    A finished env's final observation goes to ``term_obs[i]``, its episode return/length and
    reward component sums to ``ep_returns``/``ep_lengths``/``comp_sums[i]``, and it restarts at
    ``next_start[i]``..``next_end[i]`` (drawn in Python from that env's own generator).
    ``actions`` may be any numeric dtype (SB3 passes int64 for discrete, float32 for Box).

    Returns:
        The number of envs whose episode ended (``dones[i]`` marks them); ``-1 - i`` and no env
        stepped when ``actions[i]`` is the first action outside the action space.
    """
    literally(inverse)  # one compiled step per contract type (see the module docstring)
    n_envs = states.shape[0]
    for i in range(n_envs):
        if not valid_action_nb(float(actions[i]), params):
            return -1 - i
    n_done = 0
    close = prices[ROW_CLOSE]
    for i in range(n_envs):
        r, term, trunc, _ = step_env_nb(
            states, ret_bufs, comps, i, float(actions[i]), params, weights, prices, trades, inverse
        )
        rewards[i] = r
        dones[i] = term or trunc
        truncated[i] = trunc
        if term or trunc:
            n_done += 1
            build_obs_nb(term_obs, i, states, i, params, features, close, inverse)
            ep_returns[i] = states[i, EP_RETURN]
            ep_lengths[i] = states[i, EP_LENGTH]
            for c in range(N_COMPONENTS):
                comp_sums[i, c] = states[i, EP_SUMS + c]
            reset_env_nb(states, ret_bufs, i, params, next_start[i], next_end[i])
        build_obs_nb(obs, i, states, i, params, features, close, inverse)
    return n_done


# 19 arguments each: two lines, not one per line
# fmt: off
@kernel
def _step_vec_linear_nb(
    actions, states, ret_bufs, comps, comp_sums, params, weights, prices, features, next_start,
    next_end, trades, obs, rewards, dones, truncated, term_obs, ep_returns, ep_lengths,
):
    return step_vec_nb(
        actions, states, ret_bufs, comps, comp_sums, params, weights, prices, features, next_start,
        next_end, trades, obs, rewards, dones, truncated, term_obs, ep_returns, ep_lengths, False,
    )


@kernel
def _step_vec_inverse_nb(
    actions, states, ret_bufs, comps, comp_sums, params, weights, prices, features, next_start,
    next_end, trades, obs, rewards, dones, truncated, term_obs, ep_returns, ep_lengths,
):
    return step_vec_nb(
        actions, states, ret_bufs, comps, comp_sums, params, weights, prices, features, next_start,
        next_end, trades, obs, rewards, dones, truncated, term_obs, ep_returns, ep_lengths, True,
    )
# fmt: on


# the VecEnv's entry points, indexed by the inverse flag: STEP_VEC[inverse](*args without it)
STEP_VEC = (_step_vec_linear_nb, _step_vec_inverse_nb)
