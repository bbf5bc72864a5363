"""The trade server's rules for the values in a request: volumes, prices, stops, filling, and
the symbol's trade mode. Pure functions of the request, the symbol and the current quote.

Distances are in points of the symbol: ``trade_stops_level`` points at least between the
market and a pending order's price, and between the price a position is valued at and its
SL/TP. Equality is allowed, so a level of 0 only asks for the right side.

Every price a request names (an Instant execution deal's, a pending order's and its
stop-limit, SL and TP) must be a whole number of the symbol's tick size, as trade servers
require: a stop of 1.0849999999 on a 5-digit symbol is 10016 Invalid stops, a pending price
like it 10015 Invalid price. A double that is the nearest to a whole number of ticks passes.
"""

from __future__ import annotations

import math
from typing import Final

from gtw_server.terminal.sim.deals import VOLUME_EPSILON
from gtw_server.terminal.sim.prices import Quote
from gtw_server.terminal.sim.symbols import SymbolSpec, filling_allowed
from protocol import mt5_constants as c

__all__ = [
    "PENDING_TYPES",
    "direction_refusal",
    "normal_volume",
    "on_ticks",
    "pending_filling_allowed",
    "pending_price_valid",
    "stops_valid",
]

PENDING_TYPES: Final = range(c.ORDER_TYPE_BUY_LIMIT, c.ORDER_TYPE_SELL_STOP_LIMIT + 1)


def normal_volume(spec: SymbolSpec, volume: float) -> float | None:
    """``volume`` snapped to the symbol's step, or None when it breaks min/max/step (10014)."""
    if not spec.volume_min - VOLUME_EPSILON <= volume <= spec.volume_max + VOLUME_EPSILON:
        return None
    steps = round(volume / spec.volume_step)
    if abs(volume / spec.volume_step - steps) > 1e-7:
        return None
    return round(steps * spec.volume_step, 8)


# How far from a whole number of ticks a price may be: a double's rounding (1e-11 ticks at
# most for any price here), not float noise (1.0849999999 is 1e-5 ticks off).
_OFF_TICKS: Final = 1e-7


def on_ticks(spec: SymbolSpec, price: float) -> bool:
    """Whether ``price`` is a whole number of the symbol's tick size (0 is: no level)."""
    ticks = price / spec.point  # the simulator's tick size is its point
    return abs(ticks - round(ticks)) <= _OFF_TICKS


def _gap(spec: SymbolSpec) -> float:
    return (spec.stops_level - 1e-6) * spec.point


def stops_valid(spec: SymbolSpec, side: int, sl: float, tp: float, reference: float) -> bool:
    """SL/TP of a position of ``side`` valued at ``reference``: the bid for a buy and the ask
    for a sell at market, or the price a pending order will open at. 0 means no level."""
    if not (0 <= sl < math.inf and 0 <= tp < math.inf):
        return False
    if not (on_ticks(spec, sl) and on_ticks(spec, tp)):
        return False
    if side == c.ORDER_TYPE_BUY:
        sl_gap, tp_gap = reference - sl, tp - reference
    else:
        sl_gap, tp_gap = sl - reference, reference - tp
    gap = _gap(spec)
    return (sl == 0 or sl_gap >= gap) and (tp == 0 or tp_gap >= gap)


def pending_price_valid(
    spec: SymbolSpec, order_type: int, price: float, stoplimit: float, quote: Quote
) -> bool:
    """A pending order's price on the right side of the market (10015 if not): limits below
    the ask (buy) or above the bid (sell), stops above the ask or below the bid, and a
    stop-limit's limit price on the near side of its stop price."""
    if not 0 < price < math.inf or not (on_ticks(spec, price) and on_ticks(spec, stoplimit)):
        return False
    gap = _gap(spec)
    if order_type == c.ORDER_TYPE_BUY_LIMIT:
        return price <= quote.ask - gap
    if order_type == c.ORDER_TYPE_SELL_LIMIT:
        return price >= quote.bid + gap
    if order_type == c.ORDER_TYPE_BUY_STOP:
        return price >= quote.ask + gap
    if order_type == c.ORDER_TYPE_SELL_STOP:
        return price <= quote.bid - gap
    if order_type == c.ORDER_TYPE_BUY_STOP_LIMIT:
        return price >= quote.ask + gap and 0 < stoplimit <= price - gap
    return price <= quote.bid - gap and math.inf > stoplimit >= price + gap


def pending_filling_allowed(spec: SymbolSpec, type_filling: int) -> bool:
    """A pending order's filling mode: what a market order may use, and RETURN always ("the
    Return policy is used for pending orders", docs/MT5_API.md section 5)."""
    return type_filling == c.ORDER_FILLING_RETURN or filling_allowed(spec, type_filling)


def direction_refusal(trade_mode: int, side: int) -> int | None:
    """The retcode refusing a deal or order that opens or grows exposure on ``side`` under
    the symbol's ``trade_mode``, or None when it is allowed. Closing is always allowed."""
    if trade_mode == c.SYMBOL_TRADE_MODE_CLOSEONLY:
        return c.TRADE_RETCODE_CLOSE_ONLY
    if trade_mode == c.SYMBOL_TRADE_MODE_LONGONLY and side == c.ORDER_TYPE_SELL:
        return c.TRADE_RETCODE_LONG_ONLY
    if trade_mode == c.SYMBOL_TRADE_MODE_SHORTONLY and side == c.ORDER_TYPE_BUY:
        return c.TRADE_RETCODE_SHORT_ONLY
    return None
