"""Scalar numba kernels of the market model: slippage, fees, fills, funding, margin, liquidation.

Each cost is applied in exactly one function here, so a test can pin it to the cent (linear) or
to the satoshi (inverse). Prices are quote currency per unit of the base asset (USD per BTC);
``units`` is the signed position (positive = long, negative = short). Two contract types, chosen
by the ``inverse`` flag every kernel that depends on it takes (default ``False``, linear):

* **linear** (spot, USDT-margined perpetuals such as Binance BTCUSDT): ``units`` are base units
  (BTC); margin, PnL, fees and funding are in the quote currency (USDT). A position is worth
  ``units * price``; its PnL is ``units * (exit - entry)``.
* **inverse** (coin-margined perpetuals such as BitMEX XBTUSD, Deribit BTC-PERPETUAL): ``units``
  are contracts worth 1 USD each; margin, PnL, fees and funding are in the base currency (BTC).
  A position is worth ``units / price`` BTC; its PnL is ``units * (1/entry - 1/exit)``
  (https://www.bitmex.com/app/inversePerpetualsGuide).

The account is a margin account: ``balance`` holds cash plus realised PnL minus fees and
funding (margin currency), and equity is ``balance + pnl_nb(units, entry, price)``. For a spot
account with leverage 1 this is the same number as ``cash + units * price``.
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
def position_value_nb(units: float, price: float, inverse: bool = False) -> float:
    """Signed value of ``units`` at ``price`` in the margin currency.

    Linear: ``units * price`` (quote). Inverse: ``units / price`` (contracts of 1 USD in BTC).
    """
    if inverse:
        return units / price
    return units * price


@kernel
def fee_nb(units: float, price: float, rate: float, inverse: bool = False) -> float:
    """Fee on the traded notional, in the margin currency (taker or maker rate).

    Linear: ``|units| * price * rate``. Inverse: ``|contracts| / price * rate`` BTC
    (https://www.bitmex.com/app/fees: fees are charged on the position value in XBT).
    """
    return abs(position_value_nb(units, price, inverse)) * rate


@kernel
def pnl_nb(units: float, entry: float, price: float, inverse: bool = False) -> float:
    """PnL of ``units`` entered at ``entry`` and valued at ``price``, in the margin currency.

    Linear: ``units * (price - entry)``. Inverse: ``units * (1 / entry - 1 / price)`` BTC.
    """
    if inverse:
        return units * (1.0 / entry - 1.0 / price)
    return units * (price - entry)


@kernel
def fill_nb(
    units: float, entry: float, target: float, price: float, inverse: bool = False
) -> tuple[float, float, float]:
    """Move a position from ``units`` to ``target`` at ``price`` (fees are charged separately).

    Adding to a position averages the entry price; reducing it realises PnL on the closed part at
    the unchanged entry; crossing zero closes the old side and opens the rest at ``price``.
    The average entry of a linear position weights prices by units,
    ``(|u| * entry + |d| * price) / |u + d|``; an inverse position weights them by the BTC value
    of the contracts, i.e. the harmonic mean ``|u + d| / (|u| / entry + |d| / price)``, so that
    the PnL of the sum is the sum of the PnLs (BitMEX's average entry price).

    Returns:
        ``(new_units, new_entry, realised_gross_pnl)``; ``new_entry`` is 0 when flat.
    """
    delta = target - units
    if delta == 0.0:
        return units, entry, 0.0
    if units == 0.0 or (units > 0.0) == (delta > 0.0):
        if inverse:
            held = abs(units) / entry if units != 0.0 else 0.0
            new_entry = abs(target) / (held + abs(delta) / price)
        else:
            new_entry = (abs(units) * entry + abs(delta) * price) / abs(target)
        return target, new_entry, 0.0
    closed = min(abs(delta), abs(units))
    side = 1.0 if units > 0.0 else -1.0
    realised = pnl_nb(closed * side, entry, price, inverse)
    if target == 0.0:
        new_entry = 0.0
    elif (target > 0.0) == (units > 0.0):
        new_entry = entry
    else:
        new_entry = price
    return target, new_entry, realised


@kernel
def funding_payment_nb(
    units: float, mark_price: float, rate: float, inverse: bool = False
) -> float:
    """Funding the account pays at a settlement (negative = received), in the margin currency.

    Longs pay shorts when the rate is positive. Linear: ``units * mark_price * rate``
    (https://www.binance.com/en/support/faq/360033525031). Inverse: ``contracts / mark_price *
    rate`` BTC (https://www.bitmex.com/app/perpetualContractsGuide#Funding: funding = position
    value in XBT at the mark price x funding rate).
    """
    return position_value_nb(units, mark_price, inverse) * rate


@kernel
def equity_nb(
    balance: float, units: float, entry: float, price: float, inverse: bool = False
) -> float:
    """Mark-to-market equity at ``price``: ``balance + pnl_nb(units, entry, price)``."""
    if units == 0.0:
        return balance  # flat: entry is 0, and 1 / 0 must not be evaluated for inverse
    return balance + pnl_nb(units, entry, price, inverse)


@kernel
def target_units_nb(
    exposure: float, leverage: float, equity: float, price: float, inverse: bool = False
) -> float:
    """Units whose notional at ``price`` is ``exposure * leverage * equity``.

    Linear: ``exposure * leverage * equity / price`` base units. Inverse: ``exposure * leverage
    * equity * price`` contracts (fractional: the account is exact, not rounded to whole USD).
    """
    if inverse:
        return exposure * leverage * equity * price
    return exposure * leverage * equity / price


@kernel
def liquidation_price_nb(
    units: float, entry: float, balance: float, mmr: float, inverse: bool = False
) -> float:
    """Price at which equity falls to the maintenance margin. NaN when flat.

    Linear (Binance USD-M: maintenance margin on the notional at the mark,
    https://www.binance.com/en/support/faq/360033525271): solving
    ``balance + units * (p - entry) = mmr * |units| * p`` gives
    ``p = (units * entry - balance) / (units * (1 - sign(units) * mmr))``.
    A non-positive value for a long means it cannot be liquidated.

    Inverse (BitMEX: maintenance margin on the position's value at entry,
    ``mmr * |contracts| / entry`` XBT, https://www.bitmex.com/app/liquidationExamples): solving
    ``balance + units * (1/entry - 1/p) = mmr * |units| / entry`` gives
    ``p = units / (balance + units * (1 - sign(units) * mmr) / entry)``. With the isolated
    margin ``balance = |units| / (entry * L)`` this is BitMEX's
    ``entry / (1 + 1/L - mmr)`` for a long and ``entry / (1 - 1/L + mmr)`` for a short.
    The result is positive when the position can be liquidated (a long's denominator is
    positive, a short's negative); otherwise ``inf``: a short backed by at least its value in BTC
    plus the maintenance margin can never be liquidated, and a long whose equity is below the
    maintenance margin at any price is liquidated at once (:func:`liquidation_hit_nb`).
    """
    if units == 0.0:
        return np.nan
    side = 1.0 if units > 0.0 else -1.0
    if inverse:
        denominator = balance + units * (1.0 - side * mmr) / entry
        if (units > 0.0 and denominator <= 0.0) or (units < 0.0 and denominator >= 0.0):
            return np.inf
        return units / denominator
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
