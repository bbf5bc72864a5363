"""What one deal does to the positions of a hedging or a netting account.

A deal is the execution of an order: a market request, a triggered pending order, a stop
loss, a take profit, a stop-out. Whatever its origin, its effect on the book follows the
account's margin mode (docs/MT5_API.md section 3 and MetaQuotes' position properties):

- **Hedging**: a deal either opens a new position, whose ticket and identifier are the ticket
  of the order that opened it (entry IN), or closes part or all of the position it names
  (entry OUT, at that position's open price for the profit).
- **Netting**: one position per symbol. A deal in its direction adds to it at the
  volume-weighted price (IN); an opposite deal reduces or closes it (OUT), or reverses it
  (INOUT): the excess opens the opposite way at the deal's price. The position keeps its
  ``identifier`` for life; its ``ticket`` is that of the order that opened it, and after a
  reversal that of the order that reversed it.

SL/TP: a deal that opens or reverses a position gives it the order's levels; one that adds
to a netting position replaces a level only when the order sets it (non-zero).

Swap (``swaps``): a deal that closes part of a position realises that share of its swap,
one that closes or reverses it all of it; a deal that adds to a position leaves its swap be.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from gtw_server.terminal.sim.account import Position, Valuation
from gtw_server.terminal.sim.symbols import SymbolSpec
from protocol import mt5_constants as c

__all__ = ["VOLUME_EPSILON", "Deal", "Effect", "effect"]

VOLUME_EPSILON: Final = 1e-9
_PRICE_DECIMALS: Final = 10  # a netting position's average price keeps more than the digits


class Deal(NamedTuple):
    """A deal to execute: on what, which way, how much, at which price, for which order."""

    spec: SymbolSpec
    side: int  # ORDER_TYPE_BUY or ORDER_TYPE_SELL (= DEAL_TYPE_BUY or DEAL_TYPE_SELL)
    volume: float
    price: float
    now_ms: int
    order: int  # the ticket of the order it executes
    reason: int  # DEAL_REASON_*; a position it opens takes the same (expert) reason
    magic: int
    comment: str
    sl: float = 0.0
    tp: float = 0.0


class Effect(NamedTuple):
    """The result of a deal on the book."""

    entry: int  # DEAL_ENTRY_IN, OUT or INOUT
    position_id: int  # the identifier of the position it opened or changed
    profit: float  # realised, in the account currency
    put: Position | None  # the position as the deal leaves it, if one remains or opens
    drop: int | None  # the ticket of a position that is gone (closed, or reversed)
    swap: float = 0.0  # the share of the position's swap that the deal realises


def effect(deal: Deal, position: Position | None, *, netting: bool, valuation: Valuation) -> Effect:
    """What ``deal`` does to ``position``: the one it closes (hedging), the symbol's position
    (netting), or None when it opens a new one."""
    if position is None:
        return Effect(c.DEAL_ENTRY_IN, deal.order, 0.0, _opened(deal, deal.order), None)
    if position.type == deal.side:
        if not netting:
            raise ValueError("a hedging deal never adds to a position")
        return Effect(c.DEAL_ENTRY_IN, position.identifier, 0.0, _added(deal, position), None)
    closed = min(deal.volume, position.volume)
    profit = valuation.profit(deal.spec, position.type, closed, position.price_open, deal.price)
    rest = round(position.volume - deal.volume, 8)
    if rest > VOLUME_EPSILON:
        swap = round(position.swap * closed / position.volume, valuation.digits)
        reduced = position._replace(
            volume=rest,
            swap=round(position.swap - swap, valuation.digits),
            time_update_msc=deal.now_ms,
        )
        return Effect(c.DEAL_ENTRY_OUT, position.identifier, profit, reduced, None, swap)
    if rest >= -VOLUME_EPSILON or not netting:
        return Effect(
            c.DEAL_ENTRY_OUT, position.identifier, profit, None, position.ticket, position.swap
        )
    reversed_ = _opened(deal._replace(volume=-rest), position.identifier)
    return Effect(
        c.DEAL_ENTRY_INOUT, position.identifier, profit, reversed_, position.ticket, position.swap
    )


def _opened(deal: Deal, identifier: int) -> Position:
    return Position(
        ticket=deal.order,
        time_msc=deal.now_ms,
        time_update_msc=deal.now_ms,
        type=deal.side,
        magic=deal.magic,
        identifier=identifier,
        reason=deal.reason,
        volume=deal.volume,
        price_open=deal.price,
        sl=deal.sl,
        tp=deal.tp,
        swap=0.0,
        symbol=deal.spec.name,
        comment=deal.comment,
        external_id="",
    )


def _added(deal: Deal, position: Position) -> Position:
    volume = round(position.volume + deal.volume, 8)
    cost = position.volume * position.price_open + deal.volume * deal.price
    return position._replace(
        volume=volume,
        price_open=round(cost / volume, _PRICE_DECIMALS),
        sl=deal.sl or position.sl,
        tp=deal.tp or position.tp,
        time_update_msc=deal.now_ms,
    )
