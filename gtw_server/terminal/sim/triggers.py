"""What the price path triggers: pending orders, stop losses, take profits, and expirations.

The conditions are MetaTrader 5's (a buy is valued at the bid, a sell at the ask; orders that
buy trigger on the ask, orders that sell on the bid):

============================  ======================  =========================================
order / level                 fires when              fills at
============================  ======================  =========================================
Buy Limit                     ask <= price            the price, or the ask if lower (a gap)
Sell Limit                    bid >= price            the price, or the bid if higher
Buy Stop                      ask >= price            the ask
Sell Stop                     bid <= price            the bid
Buy Stop Limit                ask >= price            becomes a Buy Limit at ``stoplimit``
Sell Stop Limit               bid <= price            becomes a Sell Limit at ``stoplimit``
SL of a buy / TP of a buy     bid <= sl / bid >= tp   the bid
SL of a sell / TP of a sell   ask >= sl / ask <= tp   the ask
============================  ======================  =========================================

A stop-limit order keeps its ticket when it becomes a limit order (inferred: MetaQuotes do
not document whether the server replaces it). A ``Watch`` sums up the conditions of one symbol
in four thresholds, so that scanning the ticks costs one comparison per tick, and a bar's
range tells whether any of its ticks can fire.

Expiration (``type_time``): GTC never; DAY at the end of the day it was placed; SPECIFIED at
``expiration``; SPECIFIED_DAY at the end of ``expiration``'s day. Days are UTC days, the
simulated server's time zone. An order's ``time_expiration`` holds the moment it expires.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, NamedTuple

from gtw_server.terminal.sim.account import Position
from gtw_server.terminal.sim.prices import Quote
from protocol import mt5_constants as c
from protocol.mt5_structs import TradeOrder

__all__ = [
    "LIMIT_OF",
    "Watch",
    "expiry",
    "fill_price",
    "fires",
    "stop_hit",
    "watch",
]

_DAY_S: Final = 86_400
LIMIT_OF: Final = {
    c.ORDER_TYPE_BUY_STOP_LIMIT: c.ORDER_TYPE_BUY_LIMIT,
    c.ORDER_TYPE_SELL_STOP_LIMIT: c.ORDER_TYPE_SELL_LIMIT,
}
"""The limit order a stop-limit order becomes when its stop price is reached."""

# Which threshold each order type's price sets: (side of the quote, fires at or below it).
_ASK_LOW, _ASK_HIGH, _BID_LOW, _BID_HIGH = range(4)
_ORDER_THRESHOLD: Final = {
    c.ORDER_TYPE_BUY_LIMIT: _ASK_LOW,
    c.ORDER_TYPE_SELL_LIMIT: _BID_HIGH,
    c.ORDER_TYPE_BUY_STOP: _ASK_HIGH,
    c.ORDER_TYPE_SELL_STOP: _BID_LOW,
    c.ORDER_TYPE_BUY_STOP_LIMIT: _ASK_HIGH,
    c.ORDER_TYPE_SELL_STOP_LIMIT: _BID_LOW,
}


class Watch(NamedTuple):
    """The quotes at which something of one symbol fires: at or below the lows, at or above
    the highs."""

    ask_low: float = -math.inf
    ask_high: float = math.inf
    bid_low: float = -math.inf
    bid_high: float = math.inf

    def fires(self, quote: Quote) -> bool:
        return (
            quote.ask <= self.ask_low
            or quote.ask >= self.ask_high
            or quote.bid <= self.bid_low
            or quote.bid >= self.bid_high
        )

    def reaches(self, *, bid_low: float, bid_high: float, ask_low: float, ask_high: float) -> bool:
        """Whether a quote inside these ranges could fire: a bar whose range cannot is
        skipped whole by a scan."""
        return (
            ask_low <= self.ask_low
            or ask_high >= self.ask_high
            or bid_low <= self.bid_low
            or bid_high >= self.bid_high
        )


def watch(positions: Iterable[Position], orders: Iterable[TradeOrder]) -> Watch | None:
    """The thresholds of these positions' SL/TP and these orders, or None if nothing fires."""
    levels = list(Watch())
    for position in positions:
        if position.type == c.POSITION_TYPE_BUY:  # valued at the bid
            stops = ((_BID_LOW, position.sl), (_BID_HIGH, position.tp))
        else:  # valued at the ask
            stops = ((_ASK_HIGH, position.sl), (_ASK_LOW, position.tp))
        for index, price in stops:
            if price:
                _tighten(levels, index, price)
    for order in orders:
        _tighten(levels, _ORDER_THRESHOLD[order.type], order.price_open)
    thresholds = Watch(*levels)
    return None if thresholds == Watch() else thresholds


def _tighten(levels: list[float], index: int, price: float) -> None:
    low = index in (_ASK_LOW, _BID_LOW)
    levels[index] = max(levels[index], price) if low else min(levels[index], price)


def fires(order: TradeOrder, quote: Quote) -> bool:
    """Whether a pending order is triggered (a stop-limit: activated) at ``quote``."""
    threshold = _ORDER_THRESHOLD[order.type]
    if threshold == _ASK_LOW:
        return quote.ask <= order.price_open
    if threshold == _ASK_HIGH:
        return quote.ask >= order.price_open
    if threshold == _BID_LOW:
        return quote.bid <= order.price_open
    return quote.bid >= order.price_open


def fill_price(order: TradeOrder, quote: Quote) -> float:
    """The price a triggered limit or stop order fills at."""
    if order.type == c.ORDER_TYPE_BUY_LIMIT:
        return min(order.price_open, quote.ask)
    if order.type == c.ORDER_TYPE_SELL_LIMIT:
        return max(order.price_open, quote.bid)
    return quote.ask if order.type % 2 == c.ORDER_TYPE_BUY else quote.bid


def stop_hit(position: Position, quote: Quote) -> int | None:
    """``DEAL_REASON_SL`` or ``DEAL_REASON_TP`` if ``quote`` reaches the position's level."""
    sl, tp = position.sl, position.tp
    if position.type == c.POSITION_TYPE_BUY:
        if sl and quote.bid <= sl:
            return c.DEAL_REASON_SL
        if tp and quote.bid >= tp:
            return c.DEAL_REASON_TP
    else:
        if sl and quote.ask >= sl:
            return c.DEAL_REASON_SL
        if tp and quote.ask <= tp:
            return c.DEAL_REASON_TP
    return None


def expiry(type_time: int, expiration: int, now_s: int) -> int | None:
    """An order's ``time_expiration`` (0 for GTC), or None when it is already past: a
    refusal with 10022."""
    if type_time == c.ORDER_TIME_GTC:
        return 0
    if type_time == c.ORDER_TIME_DAY:
        return (now_s // _DAY_S + 1) * _DAY_S
    if type_time == c.ORDER_TIME_SPECIFIED_DAY:
        expiration = (expiration // _DAY_S + 1) * _DAY_S
    return expiration if expiration > now_s else None
