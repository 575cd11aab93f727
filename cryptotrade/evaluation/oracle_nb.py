"""The perfect-foresight oracle's dynamic programme, in numba, over the env's own step kernel.

Every transition is one call of :func:`cryptotrade.env.core.step_one_env_nb`, the step the env and
the native VecEnv run, so the oracle pays exactly the same fills (decide at bar ``t``, fill at
the open of ``t + 1`` plus slippage), fees, funding, liquidations and forced close at the end as
any policy; only the reward is switched off (zero weights).

Why segments and not a per-bar DP over positions: a position keeps its units from the fill that
opened it until the fill that changes it, and its size is ``leverage x equity / price`` *at that
fill*. So the state of a held position is not its equity alone, and a DP over (bar, side) with
equity as the value is not exact. It is exact over *segments*: a segment is a position opened
at fill bar ``e`` on one side and held to some later fill. Right after its opening fill, a
segment's whole future is linear in two numbers, ``X`` (the equity at the fill's reference price,
which sized it) and ``C`` (the cash cost of closing the previous position in the same fill, 0
when opened from flat): equity later is ``X k(P) - C``. A candidate with larger ``X`` and smaller
``C`` is never worse, so each ``(e, side)`` keeps only its Pareto frontier of ``(X, C)`` (almost
always one or two points; ``K`` at most, beyond which the result is flagged inexact). Each
frontier point is then held bar by bar to the end, branching at every bar into "close" (a
candidate for the flat state at the next bar) and "reverse" (a candidate for the opposite side's
frontier at the next bar). Flat equity does not change, so the flat state is one number per bar.
Cost: ``O(T^2)`` step calls for ``T`` steps.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cryptotrade.env.core import (
    BALANCE,
    ENTRY,
    EQUITY,
    N_STATE,
    P_FEE,
    P_LEVERAGE,
    PEAK,
    UNITS,
    T,
    reset_env_nb,
    step_one_env_nb,
)
from cryptotrade.env.reward import N_COMPONENTS
from cryptotrade.market.account import MAX_TRADES_PER_STEP, N_TRADE_FIELDS

SHORT, FLAT, LONG = 0, 1, 2  # side index = sign + 1
# how a path ends (``ends`` rows of the result)
END_FLAT, END_SEGMENT, END_ENTRY = 0, 1, 2


@numba.njit(cache=True, inline="always")
def _copy_row(dst: np.ndarray, i: int, src: np.ndarray, j: int) -> None:
    for k in range(N_STATE):
        dst[i, k] = src[j, k]


@numba.njit(cache=True, inline="always")
def _step(work, i, a, params, weights, prices, ret_buf, comp, trades, inverse):
    """One env step of ``work[i]`` with action ``a``; returns ``(terminated or truncated)``."""
    _, term, trunc, _ = step_one_env_nb(
        work, ret_buf, comp, i, a, params, weights, prices, trades, inverse
    )
    return term or trunc


@numba.njit(cache=True)
def _side(units: float) -> int:
    return LONG if units > 0.0 else (SHORT if units < 0.0 else FLAT)


@numba.njit(cache=True)
def oracle_dp_nb(params, prices, start, end, hold, move, k_max, max_hold, relax, inverse):
    """Best final equity over all action sequences of one evaluation episode.

    Args:
        params: The env's params vector (``P_*``); the drawdown stop should be off (inf).
        prices: The env's price rows (``ROW_*``: open, high, low, close, fill, funding, mark).
        start: First observed bar (``window - 1``); end: the last bar.
        hold: ``(3,)`` action keeping each side (short, flat, long); NaN = not allowed.
        move: ``(3, 3)`` action from side to side; NaN = not reachable in one step.
        k_max: Frontier capacity per (bar, side).
        max_hold: Longest a position is held, in bars (``end - start``: no limit, exact).
        relax: Give every opened position ``C = 0`` (the cash of its closing cost back): each
            frontier then holds one point that dominates every real candidate, and the value
            is an **upper bound** of the optimum (with ``max_hold`` unlimited).
        inverse: Inverse contract (units are contracts, equity in the base currency).

    Returns:
        ``(value, exact, actions)``: the best final equity, whether no frontier overflowed, and
        the decision at each bar ``start .. end - 1`` of a path that reaches it.
    """
    n_bars = end - start + 1
    # runtime-typed constants (and n_seg below): a literal argument makes numba compile a
    # callee once more, for that value
    row_hold, row_try, from_flat = np.int64(0), np.int64(1), np.int64(-1)
    weights = np.zeros(N_COMPONENTS)
    ret_buf = np.zeros((3, 1))
    comp = np.zeros((3, N_COMPONENTS))
    trades = np.zeros((3, MAX_TRADES_PER_STEP, N_TRADE_FIELDS))
    work = np.zeros((3, N_STATE))
    lev, fee = params[P_LEVERAGE], params[P_FEE]

    # flat state: best equity when flat after the mark at each bar's close, and where it came from
    flat_val = np.full(n_bars, -np.inf)
    flat_seg = np.full(n_bars, -1)  # -1: carried over from the bar before (or the start)
    reset_env_nb(work, ret_buf, 0, params, start, end)
    template = work[0].copy()
    flat_val[0] = work[0, EQUITY]

    # segments: their state after the opening step, side, opening bar, parent, X and C
    cap = n_bars * 2 * k_max
    seg_row = np.zeros((cap, N_STATE))
    seg_side = np.zeros(cap, dtype=np.int64)
    seg_bar = np.zeros(cap, dtype=np.int64)
    seg_parent = np.full(cap, -1)  # -1: opened from flat at the bar before
    seg_xc = np.zeros((cap, 2))
    pool = np.zeros(cap + 1, dtype=np.int64)  # freed ids: count, then the ids
    front = np.full((n_bars, 3, k_max), -1)
    n_seg = np.int64(0)
    exact = True

    best = -np.inf
    best_kind, best_seg, best_bar, best_action = END_FLAT, -1, end, np.nan

    for e in range(start + 1, end + 1):
        pe = e - start
        if flat_val[pe - 1] > flat_val[pe]:
            flat_val[pe] = flat_val[pe - 1]
            flat_seg[pe] = -1
        # open a position from flat at bar e-1 (fills at bar e)
        for to in (SHORT, LONG):
            a = move[FLAT, to]
            if math.isnan(a):
                continue
            _copy_row(work, 1, template.reshape(1, N_STATE), 0)
            work[1, BALANCE] = flat_val[pe - 1]
            work[1, EQUITY] = flat_val[pe - 1]
            work[1, PEAK] = flat_val[pe - 1]
            work[1, T] = e - 1  # the decision bar
            done = _step(work, row_try, a, params, weights, prices, ret_buf, comp, trades, inverse)
            s = _side(work[1, UNITS])
            if done:
                if work[1, EQUITY] > best:
                    best, best_kind, best_seg, best_bar, best_action = (
                        work[1, EQUITY],
                        END_ENTRY,
                        -1,
                        e - 1,
                        a,
                    )
            elif s != FLAT:
                n_seg, ok = _insert(
                    work,
                    row_try,
                    s,
                    pe,
                    from_flat,
                    lev,
                    fee,
                    front,
                    seg_row,
                    seg_side,
                    seg_bar,
                    seg_parent,
                    seg_xc,
                    pool,
                    n_seg,
                    k_max,
                    relax,
                    inverse,
                )
                exact = exact and ok
        # hold every frontier segment opened at e, branching at each bar
        for side in (SHORT, LONG):
            for j in range(k_max):
                sid = front[pe, side, j]
                if sid < 0:
                    continue
                _copy_row(work, 0, seg_row, sid)
                for t in range(e, min(end, e + max_hold)):
                    pn = t + 1 - start
                    for to in (FLAT, 2 - side):
                        a = move[side, to]
                        if math.isnan(a):
                            continue
                        _copy_row(work, 1, work, 0)
                        done = _step(
                            work,
                            row_try,
                            a,
                            params,
                            weights,
                            prices,
                            ret_buf,
                            comp,
                            trades,
                            inverse,
                        )
                        s = _side(work[1, UNITS])
                        if done:
                            if work[1, EQUITY] > best:
                                best, best_kind, best_seg, best_bar, best_action = (
                                    work[1, EQUITY],
                                    END_SEGMENT,
                                    sid,
                                    t,
                                    a,
                                )
                        elif s == FLAT:
                            if work[1, EQUITY] > flat_val[pn]:
                                flat_val[pn] = work[1, EQUITY]
                                flat_seg[pn] = sid
                        else:
                            n_seg, ok = _insert(
                                work,
                                row_try,
                                s,
                                pn,
                                sid,
                                lev,
                                fee,
                                front,
                                seg_row,
                                seg_side,
                                seg_bar,
                                seg_parent,
                                seg_xc,
                                pool,
                                n_seg,
                                k_max,
                                relax,
                                inverse,
                            )
                            exact = exact and ok
                    a = hold[side]
                    done = _step(
                        work, row_hold, a, params, weights, prices, ret_buf, comp, trades, inverse
                    )
                    if done:
                        if work[0, EQUITY] > best:
                            best, best_kind, best_seg, best_bar, best_action = (
                                work[0, EQUITY],
                                END_SEGMENT,
                                sid,
                                t,
                                a,
                            )
                        break
                    if _side(work[0, UNITS]) != side:
                        break  # cannot happen without termination; be safe
    if flat_val[n_bars - 1] >= best:
        best, best_kind = flat_val[n_bars - 1], END_FLAT

    actions = np.full(n_bars - 1, hold[FLAT])
    # walk back from the best end
    seg = -1
    flat_bar = -1
    if best_kind == END_FLAT:
        flat_bar = end
    elif best_kind == END_ENTRY:
        actions[best_bar - start] = best_action
        flat_bar = best_bar
    else:
        actions[best_bar - start] = best_action
        for t in range(seg_bar[best_seg], best_bar):
            actions[t - start] = hold[seg_side[best_seg]]
        seg = best_seg
    while True:
        if seg >= 0:  # the segment's opening decision, then its parent
            e = seg_bar[seg]
            parent = seg_parent[seg]
            if parent < 0:
                actions[e - 1 - start] = move[FLAT, seg_side[seg]]
                flat_bar = e - 1
                seg = -1
            else:
                actions[e - 1 - start] = move[seg_side[parent], seg_side[seg]]
                for t in range(seg_bar[parent], e - 1):
                    actions[t - start] = hold[seg_side[parent]]
                seg = parent
            continue
        # on the flat chain at flat_bar
        while flat_bar > start and flat_seg[flat_bar - start] < 0:
            flat_bar -= 1  # flat carried over: the flat hold action (already filled in)
        if flat_bar <= start:
            break
        closer = flat_seg[flat_bar - start]
        actions[flat_bar - 1 - start] = move[seg_side[closer], FLAT]
        for t in range(seg_bar[closer], flat_bar - 1):
            actions[t - start] = hold[seg_side[closer]]
        seg = closer
        flat_bar = -1
    return best, exact, actions


@numba.njit(cache=True)
def _insert(
    work,
    i,
    side,
    pe,
    parent,
    lev,
    fee,
    front,
    seg_row,
    seg_side,
    seg_bar,
    seg_parent,
    seg_xc,
    pool,
    n_seg,
    k_max,
    relax,
    inverse,
):
    """Add the position in ``work[i]`` (opened at the bar ``pe`` steps after the start) to the
    Pareto frontier of its bar and side.

    ``X`` = the equity that sized the position (``|units| x entry / leverage``), ``C`` = the cash
    it carries as a closing cost of the previous position: ``X (1 - leverage x fee) - balance``.
    ``pool[0]`` counts the freed segment ids stacked in ``pool[1:]`` (reused before ``n_seg``).
    Returns ``(n_seg, exact)``; ``exact`` is False when a full frontier dropped a point.
    """
    # the equity that sized it: notional / leverage (inverse: contracts / price, in coin)
    if inverse:
        x = abs(work[i, UNITS]) / (work[i, ENTRY] * lev)
    else:
        x = abs(work[i, UNITS]) * work[i, ENTRY] / lev
    if relax:
        work[i, BALANCE] = max(work[i, BALANCE], x * (1.0 - lev * fee))
    c = x * (1.0 - lev * fee) - work[i, BALANCE]
    tol = 1e-12 * max(x, 1.0)
    for j in range(k_max):
        sid = front[pe, side, j]
        if sid >= 0 and seg_xc[sid, 0] >= x - tol and seg_xc[sid, 1] <= c + tol:
            return n_seg, True  # dominated by a point already there
    free = -1
    for j in range(k_max):
        sid = front[pe, side, j]
        if sid >= 0 and x >= seg_xc[sid, 0] and c <= seg_xc[sid, 1]:
            front[pe, side, j] = -1  # the new point dominates it
            pool[0] += 1
            pool[pool[0]] = sid
        if front[pe, side, j] < 0 and free < 0:
            free = j
    exact = True
    if free < 0:  # full: keep the larger X - C (a heuristic, so the result is flagged)
        exact = False
        worst, free = np.inf, 0
        for j in range(k_max):
            sid = front[pe, side, j]
            if seg_xc[sid, 0] - seg_xc[sid, 1] < worst:
                worst, free = seg_xc[sid, 0] - seg_xc[sid, 1], j
        if x - c <= worst:
            return n_seg, False
        pool[0] += 1
        pool[pool[0]] = front[pe, side, free]
    if pool[0] > 0:
        sid = pool[pool[0]]
        pool[0] -= 1
    else:
        sid = n_seg
        n_seg += 1
    for k in range(N_STATE):
        seg_row[sid, k] = work[i, k]
    seg_side[sid] = side
    seg_bar[sid] = int(work[i, T])  # the opening fill's bar
    seg_parent[sid] = parent
    seg_xc[sid, 0] = x
    seg_xc[sid, 1] = c
    front[pe, side, free] = sid
    return n_seg, exact
