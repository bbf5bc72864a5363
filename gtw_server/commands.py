"""The order life cycle past a market deal, in the terminal: pending orders placed, changed and
cancelled, a position's stops moved, a position closed by an opposite one.

``CommandDesk`` runs in the worker, over the ``TerminalAdapter``. Each command reads what it
acts on first (the tick, the order, the position), so a mistake is refused with what is wrong
and what to do (a price on the wrong side of the market, an expiration already past, a ticket
that is not a pending order, a change that changes nothing) before ``order_send``; the trade
server's own verdict still decides everything else.

``settled`` answers reconciliation for the commands that leave no tagged trace in the
history (a modification, a cancellation): whether the terminal's state is what they asked
for. PLACE and CLOSE_BY leave orders and deals with their tag, found like OPEN's
(``TerminalAdapter.find``).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import Struct

from gtw_server.adapter import OrderOutcome, TerminalAdapter, filling_constant, rejected_outcome
from gtw_server.symbol_names import AmbiguousSymbol
from protocol import (
    Cancel,
    CloseBy,
    ErrorCode,
    Expiration,
    ModifyOrder,
    ModifyPosition,
    PendingType,
    Place,
)

__all__ = ["STATEFUL", "Change", "CommandDesk", "Instruction"]

Change = Place | ModifyPosition | ModifyOrder | Cancel | CloseBy
# The commands reconciled by the state they leave, not by a tagged order or deal.
STATEFUL: Final = frozenset({"MODIFY_POSITION", "MODIFY_ORDER", "CANCEL"})

_ORDER_TIME_GTC: Final = 0
_ORDER_TIME_DAY: Final = 1
_ORDER_TIME_SPECIFIED: Final = 2
_ORDER_STATE_NAMES: Final = {
    2: "cancelled",
    3: "partially filled",
    4: "filled",
    5: "rejected",
    6: "expired",
}
_ORDER_STATE_CANCELED: Final = 2


class Instruction(Struct, frozen=True, kw_only=True):
    """A command for the terminal, with the comment its orders and deals carry (the tag)."""

    request: Change
    comment: str


class CommandDesk:
    """Carries out ``Instruction``s with the terminal behind ``adapter``."""

    def __init__(self, adapter: TerminalAdapter) -> None:
        self._adapter = adapter
        self._mt5 = adapter.mt5

    def run(self, instruction: Instruction) -> OrderOutcome:
        self._adapter.ensure_connected()
        request = instruction.request
        if isinstance(request, Place):
            return self._place(request, instruction.comment)
        if isinstance(request, ModifyPosition):
            return self._move_stops(request)
        if isinstance(request, ModifyOrder):
            return self._change(request)
        if isinstance(request, Cancel):
            return self._cancel(request)
        return self._close_by(request, instruction.comment)

    # -- the commands -----------------------------------------------------------------------

    def _place(self, request: Place, comment: str) -> OrderOutcome:
        adapter, kind = self._adapter, PendingType(request.type)
        try:
            symbol = adapter.resolve(request.symbol)
        except AmbiguousSymbol as exc:
            return rejected_outcome(str(exc), code=ErrorCode.SYMBOL_AMBIGUOUS)
        filling = adapter.filling(symbol, filling_constant(request.type_filling))
        if filling is None:
            return rejected_outcome(
                adapter.unknown_symbol(request.symbol), code=ErrorCode.SYMBOL_NOT_FOUND
            )
        tick = self._mt5.symbol_info_tick(symbol)
        if tick is None:
            return adapter.refused("symbol_info_tick")
        refusal = _wrong_side(kind, request.price, request.stoplimit, tick) or _past(
            request.expiration, tick.time
        )
        if refusal is not None:
            return refusal
        type_time, expiration = _time_terms(request.expiration)
        order = {
            "action": self._mt5.TRADE_ACTION_PENDING,
            "symbol": symbol,
            "volume": float(request.volume),
            "type": kind.constant,
            "price": float(request.price),
            "stoplimit": float(request.stoplimit or 0.0),
            "sl": float(request.sl or 0.0),
            "tp": float(request.tp or 0.0),
            "magic": request.magic or 0,
            "comment": comment,
            "type_time": type_time,
            "expiration": expiration,
            "type_filling": filling,
        }
        outcome = adapter.send(order, done="DONE", volume_down=request.volume_rounding == "down")
        resolved = symbol if symbol != request.symbol else None
        return _about(outcome, symbol=symbol, action="PLACE", resolved=resolved)

    def _move_stops(self, request: ModifyPosition) -> OrderOutcome:
        position = self._position(request.ticket)
        if isinstance(position, OrderOutcome):
            return position
        sl = position.sl if request.sl is None else request.sl
        tp = position.tp if request.tp is None else request.tp
        if (sl, tp) == (position.sl, position.tp):
            return _nothing_changed(
                f"position {request.ticket} has sl {sl:g} and tp {tp:g} already"
            )
        order = {
            "action": self._mt5.TRADE_ACTION_SLTP,
            "position": position.ticket,
            "symbol": position.symbol,
            "sl": float(sl),
            "tp": float(tp),
        }
        outcome = self._adapter.send(order, done="DONE")
        return _about(outcome, ticket=position.ticket, order=None, symbol=position.symbol)

    def _change(self, request: ModifyOrder) -> OrderOutcome:
        order = self._pending(request.ticket)
        if isinstance(order, OrderOutcome):
            return order
        kind = PendingType(_pending_name(order.type))
        asked = _wanted(order, request)
        if asked == _terms(order):
            return _nothing_changed(f"order {order.ticket} already has these terms")
        price, stoplimit, sl, tp, type_time, expiration = asked
        tick = self._mt5.symbol_info_tick(order.symbol)
        if tick is None:
            return self._adapter.refused("symbol_info_tick")
        moved = request.price is not None or request.stoplimit is not None
        refusal = (moved and _wrong_side(kind, price, stoplimit or None, tick)) or _past(
            request.expiration, tick.time
        )
        if refusal:
            return refusal
        change = {
            "action": self._mt5.TRADE_ACTION_MODIFY,
            "order": order.ticket,
            "symbol": order.symbol,
            "price": float(price),
            "stoplimit": float(stoplimit),
            "sl": float(sl),
            "tp": float(tp),
            "type_time": type_time,
            "expiration": expiration,
        }
        outcome = self._adapter.send(change, done="DONE")
        return _about(outcome, ticket=order.ticket, order=order.ticket, symbol=order.symbol)

    def _cancel(self, request: Cancel) -> OrderOutcome:
        order = self._pending(request.ticket)
        if isinstance(order, OrderOutcome):
            return order
        removal = {"action": self._mt5.TRADE_ACTION_REMOVE, "order": order.ticket}
        outcome = self._adapter.send(removal, done="DONE")
        return _about(outcome, ticket=order.ticket, order=order.ticket, symbol=order.symbol)

    def _close_by(self, request: CloseBy, comment: str) -> OrderOutcome:
        if not self._adapter.hedging:
            return rejected_outcome(
                "CLOSE_BY needs a hedging account; a netting account holds one position per "
                "symbol (send CLOSE, or an OPEN the other way)"
            )
        first = self._position(request.ticket)
        if isinstance(first, OrderOutcome):
            return first
        second = self._position(request.by)
        if isinstance(second, OrderOutcome):
            return second
        if first.symbol != second.symbol or first.type == second.type:
            return rejected_outcome(
                f"position {first.ticket} ({_side(first.type)} {first.symbol}) cannot be "
                f"closed by {second.ticket} ({_side(second.type)} {second.symbol}): it takes "
                "two positions of one symbol, one a buy and the other a sell"
            )
        order = {
            "action": self._mt5.TRADE_ACTION_CLOSE_BY,
            "position": first.ticket,
            "position_by": second.ticket,
            "symbol": first.symbol,
            "magic": first.magic,
            "comment": comment,
        }
        outcome = self._adapter.send(order)
        return _about(outcome, ticket=first.ticket, symbol=first.symbol, action="CLOSE")

    # -- reconciliation -----------------------------------------------------------------------

    def settled(self, instructions: list[Instruction]) -> list[OrderOutcome | None]:
        """For each stateful instruction, ``DONE`` if the terminal is now as it asked (it was
        carried out, or something else did the same), or ``None`` (not carried out: the uuid
        may be used again). Raises ``TerminalError`` when the terminal cannot be read."""
        self._adapter.ensure_connected()
        return [self._settled(instruction.request) for instruction in instructions]

    def _settled(self, request: Change) -> OrderOutcome | None:
        if isinstance(request, ModifyPosition):
            found = self._adapter.read("positions_get", ticket=request.ticket)
            if not found or (found[0].sl, found[0].tp) != (
                _given(request.sl, found[0].sl),
                _given(request.tp, found[0].tp),
            ):
                return None
            return _done("found in the terminal's state", ticket=request.ticket)
        if isinstance(request, ModifyOrder):
            found = self._adapter.read("orders_get", ticket=request.ticket)
            if not found or _wanted(found[0], request) != _terms(found[0]):
                return None
            return _done("found in the terminal's state", ticket=request.ticket)
        if not isinstance(request, Cancel):
            return None  # PLACE and CLOSE_BY are found by their tag (TerminalAdapter.find)
        gone = self._adapter.read("history_orders_get", ticket=request.ticket)
        if not gone or gone[0].state != _ORDER_STATE_CANCELED:
            return None
        return _done("found cancelled in the terminal's history", ticket=request.ticket)

    # -- reading what a command acts on ---------------------------------------------------

    def _position(self, ticket: int) -> Any:
        """The open position ``ticket``, or the refusal saying what ``ticket`` is instead."""
        found = self._adapter.read("positions_get", ticket=ticket)
        if found:
            return found[0]
        why = f"position {ticket} is not open"
        if self._adapter.read("orders_get", ticket=ticket):
            why += f": {ticket} is a pending order (MODIFY_ORDER, CANCEL act on it)"
        return rejected_outcome(why, code=ErrorCode.POSITION_NOT_FOUND)

    def _pending(self, ticket: int) -> Any:
        """The pending order ``ticket``, or the refusal saying what ``ticket`` is instead."""
        found = self._adapter.read("orders_get", ticket=ticket)
        if found:
            return found[0]
        if self._adapter.read("positions_get", ticket=ticket):
            why = f"{ticket} is an open position, not a pending order (MODIFY_POSITION, CLOSE)"
        elif history := self._adapter.read("history_orders_get", ticket=ticket):
            state = _ORDER_STATE_NAMES.get(history[0].state, f"in state {history[0].state}")
            why = f"order {ticket} is no longer pending: it was {state}"
        else:
            why = f"no pending order {ticket} is known to the terminal"
        return rejected_outcome(why, code=ErrorCode.ORDER_NOT_FOUND)


def _wrong_side(
    kind: PendingType, price: float, stoplimit: float | None, tick: Any
) -> OrderOutcome | None:
    """The refusal of a pending price on the wrong side of the market, or ``None``. The trade
    server adds its own distance (the stops level) to this."""
    buy = kind.side == "BUY"
    market, quoted = (tick.ask, "ask") if buy else (tick.bid, "bid")
    limit = kind in (PendingType.BUY_LIMIT, PendingType.SELL_LIMIT)
    below = limit == buy  # a buy limit and a sell stop wait below the market
    if (price >= market) if below else (price <= market):
        where = "below" if below else "above"
        return rejected_outcome(
            f"a {kind} price must be {where} the {quoted} ({market:g}); {price:g} is not",
            code=ErrorCode.INVALID_PRICE,
        )
    if stoplimit is not None and ((stoplimit >= price) if buy else (stoplimit <= price)):
        where = "below" if buy else "above"
        return rejected_outcome(
            f"a {kind}'s stoplimit must be {where} its stop price ({price:g}); "
            f"{stoplimit:g} is not",
            code=ErrorCode.INVALID_PRICE,
        )
    return None


def _past(expiration: Expiration | None, now_s: int) -> OrderOutcome | None:
    if isinstance(expiration, int) and expiration <= now_s:
        return rejected_outcome(
            f"expiration {expiration} is not in the future: the terminal's time is {now_s}",
            code=ErrorCode.INVALID_EXPIRATION,
        )
    return None


def _time_terms(expiration: Expiration | None) -> tuple[int, int]:
    """``(type_time, expiration)`` for ``order_send``."""
    if expiration is None or expiration == "GTC":
        return _ORDER_TIME_GTC, 0
    if expiration == "DAY":
        return _ORDER_TIME_DAY, 0
    return _ORDER_TIME_SPECIFIED, int(expiration)


def _terms(order: Any) -> tuple[float, float, float, float, int, int]:
    """What a modification can change of ``order``, in ``order_send``'s terms."""
    expiration = order.time_expiration if order.type_time == _ORDER_TIME_SPECIFIED else 0
    return (
        order.price_open,
        order.price_stoplimit,
        order.sl,
        order.tp,
        order.type_time,
        expiration,
    )


def _wanted(order: Any, request: ModifyOrder) -> tuple[float, float, float, float, int, int]:
    """``order``'s terms with what ``request`` changes."""
    price, stoplimit, sl, tp, type_time, expiration = _terms(order)
    if request.expiration is not None:
        type_time, expiration = _time_terms(request.expiration)
    return (
        _given(request.price, price),
        _given(request.stoplimit, stoplimit),
        _given(request.sl, sl),
        _given(request.tp, tp),
        type_time,
        expiration,
    )


def _given(value: float | None, current: float) -> float:
    return current if value is None else value


def _pending_name(order_type: int) -> str:
    return next(kind for kind in PendingType if kind.constant == order_type)


def _side(position_type: int) -> str:
    return "buy" if position_type == 0 else "sell"


def _nothing_changed(what: str) -> OrderOutcome:
    return rejected_outcome(f"nothing to change: {what}", code=ErrorCode.NO_CHANGES)


def _done(comment: str, *, ticket: int) -> OrderOutcome:
    return OrderOutcome(status="DONE", comment=comment, ticket=ticket, order=ticket)


def _about(outcome: OrderOutcome, **fields: Any) -> OrderOutcome:
    """``outcome`` naming what it acted on, once it was carried out."""
    if outcome.status not in ("FILLED", "DONE"):
        return outcome
    return msgspec.structs.replace(outcome, **fields)
