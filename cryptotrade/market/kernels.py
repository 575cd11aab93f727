"""Scalar numba kernels of the market model: slippage, fees, fills, funding, margin, liquidation.

Each cost is applied in exactly one function here, so a test can pin it to the cent. Prices are
quote currency per unit of the base asset; ``units`` is the signed position in base units
(positive = long, negative = short). The account is a margin account: ``balance`` holds cash plus
realised PnL minus fees and funding, and equity is ``balance + units * (price - entry)``. For a
spot account with leverage 1 this is the same number as ``cash + units * price``.
"""

from __future__ import annotations

import numpy as np

from cryptotrade.market.jit import kernel


@kernel
def slipped_price_nb(
    price: float, direction: float, slippage_bps: float, slippage_range: float, bar_range: float
) -> float:
    """Price a market order gets: worse than ``price`` in the direction of the trade.

    Args:
        price: Reference price (the open of the fill bar).
        direction: +1 for a buy, -1 for a sell, 0 for no trade.
        slippage_bps: Slippage in basis points of ``price``.
        slippage_range: Slippage as a fraction of ``bar_range``.
        bar_range: High minus low of the last bar the trader has seen (known at decision time).

    Returns:
        ``price + direction * (price * bps / 1e4 + slippage_range * bar_range)``.
    """
    return price + direction * (price * slippage_bps * 1e-4 + slippage_range * bar_range)


@kernel
def fee_nb(units: float, price: float, rate: float) -> float:
    """Fee on the traded notional ``|units| * price * rate`` (taker or maker rate)."""
    return abs(units) * price * rate


@kernel
def fill_nb(units: float, entry: float, target: float, price: float) -> tuple[float, float, float]:
    """Move a position from ``units`` to ``target`` at ``price`` (fees are charged separately).

    Adding to a position averages the entry price; reducing it realises PnL on the closed part at
    the unchanged entry; crossing zero closes the old side and opens the rest at ``price``.

    Returns:
        ``(new_units, new_entry, realised_gross_pnl)``; ``new_entry`` is 0 when flat.
    """
    delta = target - units
    if delta == 0.0:
        return units, entry, 0.0
    if units == 0.0 or (units > 0.0) == (delta > 0.0):
        new_entry = (abs(units) * entry + abs(delta) * price) / abs(target)
        return target, new_entry, 0.0
    closed = min(abs(delta), abs(units))
    side = 1.0 if units > 0.0 else -1.0
    realised = closed * (price - entry) * side
    if target == 0.0:
        new_entry = 0.0
    elif (target > 0.0) == (units > 0.0):
        new_entry = entry
    else:
        new_entry = price
    return target, new_entry, realised


@kernel
def funding_payment_nb(units: float, mark_price: float, rate: float) -> float:
    """Funding the account pays at a settlement (negative = received).

    Longs pay shorts when the rate is positive: ``units * mark_price * rate``
    (https://www.binance.com/en/support/faq/360033525031).
    """
    return units * mark_price * rate


@kernel
def equity_nb(balance: float, units: float, entry: float, price: float) -> float:
    """Mark-to-market equity at ``price``."""
    return balance + units * (price - entry)


@kernel
def target_units_nb(exposure: float, leverage: float, equity: float, price: float) -> float:
    """Units whose notional at ``price`` is ``exposure * leverage * equity``."""
    return exposure * leverage * equity / price


@kernel
def liquidation_price_nb(units: float, entry: float, balance: float, mmr: float) -> float:
    """Price at which equity equals the maintenance margin ``mmr * |units| * price``.

    Solving ``balance + units * (p - entry) = mmr * |units| * p`` for ``p`` gives
    ``p = (units * entry - balance) / (units * (1 - sign(units) * mmr))``. NaN when flat.
    A non-positive value for a long means it cannot be liquidated.
    """
    if units == 0.0:
        return np.nan
    side = 1.0 if units > 0.0 else -1.0
    return (units * entry - balance) / (units * (1.0 - side * mmr))


@kernel
def liquidation_hit_nb(
    units: float, liq_price: float, seg_open: float, low: float, high: float
) -> tuple[bool, float]:
    """Whether a price path segment reaches the liquidation price, and the execution price.

    A gap through the liquidation price executes at ``seg_open`` (worse than ``liq_price``);
    otherwise a touch of ``low`` (long) or ``high`` (short) executes at ``liq_price``.
    """
    if units > 0.0 and liq_price > 0.0:
        if seg_open <= liq_price:
            return True, seg_open
        if low <= liq_price:
            return True, liq_price
    elif units < 0.0:
        if seg_open >= liq_price:
            return True, seg_open
        if high >= liq_price:
            return True, liq_price
    return False, 0.0
