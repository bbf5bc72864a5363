"""``order_send`` in terms of the ``Bridge``: the package's request, each action onto the signed,
journaled command it is, and the package's ``OrderSendResult`` back.

The request is checked first as the package's binding checks it (docs/MT5_API.md section 3):
integer keys must be ``int``, price and volume keys ``float``, ``symbol`` and ``comment``
strings of 29 UTF-16 units at most; a violation is ``None`` with ``(-2, 'Invalid "<key>"
argument')`` and nothing is sent. Missing keys are 0, 0.0 or ``''``, as there. What a
terminal refuses before its trade server is refused here with the same retcode (a close of
the wrong side or symbol, with no volume, of a position that is gone; a MODIFY with no price;
a SPECIFIED order with no expiration).

| ``action`` | the command |
|---|---|
| ``TRADE_ACTION_DEAL`` without ``position`` | ``send_order`` (``type`` 0 BUY, 1 SELL) |
| ``TRADE_ACTION_DEAL`` with ``position`` | ``close_position`` (``volume``: all or part) |
| ``TRADE_ACTION_PENDING`` | ``place_order`` (``type`` 2-7; ``type_time``/``expiration``) |
| ``TRADE_ACTION_SLTP`` | ``modify_position`` (``position``, ``sl``, ``tp``) |
| ``TRADE_ACTION_MODIFY`` | ``modify_order`` (``order``, ``price``, ``sl``, ``tp``, ...) |
| ``TRADE_ACTION_REMOVE`` | ``cancel_order`` (``order``) |
| ``TRADE_ACTION_CLOSE_BY`` | ``close_by`` (``position``, ``position_by``) |

The request's ``type_filling`` is sent as given (0, ``ORDER_FILLING_FOK``, when left out, as
the package sends it), and a close's ``magic`` and ``comment`` go on its deal.

What comes back is an ``OrderSendResult`` as the package's: the terminal's ``retcode``,
``deal``, ``order``, ``volume``, ``price``, ``bid``, ``ask``, ``comment``, ``request_id`` and
``retcode_external``, and the ``request`` as the script wrote it (its ``comment`` too: the
uuid tag the gateway puts in the order's comment is the bridge's business). A refusal is a
result too, as the package's: the terminal's retcode when the terminal refused, with the rest
of its answer (at a requote, 10004, the prices it offers), or the one it would have given for
what the gateway checks itself (``NO_CHANGES`` 10025, ``INVALID_PRICE`` 10015,
``INVALID_EXPIRATION`` 10022, an unknown ticket 10013); ``TRADE_RETCODE_REJECT`` (10006) when
the bridge refused (the RiskMonitor, the kill switch, a signature), its reason in ``comment``;
``TRADE_RETCODE_INVALID`` (10013) for a request the bridge cannot carry (a type the action does
not take, a missing ticket).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from inf_bridge.breaker import HEARTBEAT_FAILURE
from inf_bridge.client import Bridge
from inf_bridge.errors import CircuitOpen, InvalidOrder, OrderRejected, OutcomeUnknown, RiskRejected
from inf_bridge.results import OrderDone, OrderFilled, OrderState
from protocol import Filling
from protocol import mt5_constants as c
from protocol.mt5_structs import OrderSendResult, TradePosition, TradeRequest

__all__ = ["binding_error", "result_of_refusal", "send", "trade_request"]

_INT_KEYS: Final = (
    "action",
    "type",
    "type_filling",
    "type_time",
    "magic",
    "order",
    "deviation",
    "position",
    "position_by",
    "expiration",
)
# Unsigned 32 bits for these; unsigned 64 for the rest, but expiration (signed 64).
_INT_RANGES: Final = {
    **dict.fromkeys(("action", "type", "type_filling", "type_time"), (0, 2**32)),
    "expiration": (-(2**63), 2**63),
}
_FLOAT_KEYS: Final = ("volume", "price", "stoplimit", "sl", "tp")
_TEXT_KEYS: Final = ("symbol", "comment")
_MAX_TEXT_UNITS: Final = 29  # UTF-16 units: the binding's limit for symbol and comment
_PENDING_TYPES: Final = {
    c.ORDER_TYPE_BUY_LIMIT: "BUY_LIMIT",
    c.ORDER_TYPE_SELL_LIMIT: "SELL_LIMIT",
    c.ORDER_TYPE_BUY_STOP: "BUY_STOP",
    c.ORDER_TYPE_SELL_STOP: "SELL_STOP",
    c.ORDER_TYPE_BUY_STOP_LIMIT: "BUY_STOP_LIMIT",
    c.ORDER_TYPE_SELL_STOP_LIMIT: "SELL_STOP_LIMIT",
}
_SIDES: Final = {c.ORDER_TYPE_BUY: "BUY", c.ORDER_TYPE_SELL: "SELL"}
_FILLINGS: Final = {kind.constant: kind for kind in Filling}
_DAY_S: Final = 86_400
# The gateway's refusals that a terminal gives as a retcode of its own (the rest: REJECT).
_RETCODES: Final = {
    "NO_CHANGES": c.TRADE_RETCODE_NO_CHANGES,
    "INVALID_PRICE": c.TRADE_RETCODE_INVALID_PRICE,
    "INVALID_EXPIRATION": c.TRADE_RETCODE_INVALID_EXPIRATION,
    "INVALID_VOLUME": c.TRADE_RETCODE_INVALID_VOLUME,
    "ORDER_NOT_FOUND": c.TRADE_RETCODE_INVALID,
    "POSITION_NOT_FOUND": c.TRADE_RETCODE_POSITION_CLOSED,
}


class NotCarried(Exception):
    """A request the bridge has no command for, or one a terminal would refuse before the
    trade server: the retcode it would give (``TRADE_RETCODE_INVALID`` by default)."""

    def __init__(self, message: str, retcode: int = c.TRADE_RETCODE_INVALID) -> None:
        super().__init__(message)
        self.retcode = retcode


def binding_error(request: Mapping[str, Any]) -> tuple[int, str] | None:
    """The binding's own refusal of ``request`` (``last_error()``), or ``None``."""
    for key in _INT_KEYS:
        value = request.get(key, 0)
        low, high = _INT_RANGES.get(key, (0, 2**64))
        # bool is an int, as the binding takes it; the C types' ranges are the binding's.
        if not isinstance(value, int) or not low <= value < high:
            return -2, f'Invalid "{key}" argument'
    for key in _FLOAT_KEYS:
        if not isinstance(request.get(key, 0.0), float):
            return -2, f'Invalid "{key}" argument'
    for key in _TEXT_KEYS:
        value = request.get(key, "")
        if not isinstance(value, str) or len(value.encode("utf-16-le")) // 2 > _MAX_TEXT_UNITS:
            return -2, f'Invalid "{key}" argument'
    return None


def trade_request(request: Mapping[str, Any]) -> TradeRequest:
    """The request as the package echoes it: every field, missing ones 0, 0.0 or ``''``;
    numbers as Python's own (a ``numpy.float64`` the binding takes, the wire does not)."""
    fields: dict[str, Any] = {key: int(request.get(key, 0)) for key in _INT_KEYS}
    fields |= {key: float(request.get(key, 0.0)) for key in _FLOAT_KEYS}
    fields |= {key: str(request.get(key, "")) for key in _TEXT_KEYS}
    return TradeRequest([fields[name] for name in TradeRequest.__match_args__])


async def send(
    bridge: Bridge, request: TradeRequest, uuid: str, *, asked_before: bool = False
) -> OrderSendResult:
    """Send ``request`` as its command, with ``uuid``; its result, or the refusal's.
    ``asked_before``: this uuid was sent before and its outcome not told: the gateway is
    asked what became of it first, and only an order it never had is sent (the RiskMonitor
    and the breaker would count or stop a retry of what may have executed). Raises what the
    Bridge raises when nothing can be told (``GatewayTimeout``, ``OutcomeUnknown``,
    ``CircuitOpen``)."""
    if asked_before:
        told = await _told(bridge, request, uuid)
        if told is not None:
            return told
    try:
        command = await _command(bridge, request, uuid)
        answer = await command()
    except (OrderRejected, RiskRejected, InvalidOrder, NotCarried) as exc:
        return result_of_refusal(request, exc)
    except CircuitOpen as exc:
        if exc.reason == HEARTBEAT_FAILURE:
            raise  # no connection: the caller reports it as the package would
        return _package_result(request, c.TRADE_RETCODE_REJECT, comment=f"{exc}")
    return _result(request, answer)


async def _told(bridge: Bridge, request: TradeRequest, uuid: str) -> OrderSendResult | None:
    """What the gateway says of ``uuid``: its result, ``None`` when it never had it;
    ``OutcomeUnknown`` while it still cannot tell."""
    try:
        state = await bridge.get_order(uuid)
    except OrderRejected as exc:
        if exc.error_code == "ORDER_NOT_FOUND":
            return None
        raise
    if state.status == "PENDING":
        raise OutcomeUnknown(uuid, "the gateway is still settling it; ask again")
    if state.status == "REJECTED":
        refused = OrderRejected(
            state.error_code or "REJECTED",
            state.error_msg or "",
            retcode=state.retcode,
            bid=state.bid,
            ask=state.ask,
            request_id=state.request_id,
            retcode_external=state.retcode_external,
        )
        return result_of_refusal(request, refused)
    filled = state.status == "FILLED"
    return _package_result(
        request,
        state.retcode or c.TRADE_RETCODE_DONE,
        deal=state.deal or 0,
        order=state.order or 0,
        volume=(state.volume or 0.0) if filled else 0.0,
        price=(state.price or 0.0) if filled else 0.0,
        answer=state,
    )


def result_of_refusal(request: TradeRequest, exc: Exception) -> OrderSendResult:
    """The package's result for an order that was refused (nothing executed)."""
    if isinstance(exc, OrderRejected) and exc.retcode is not None:
        # The terminal's own words, without the gateway's preamble ("...: 10016 Invalid stops").
        comment = exc.message.rsplit(f"{exc.retcode} ", 1)[-1]
        return _package_result(request, exc.retcode, comment=comment, answer=exc)
    if isinstance(exc, OrderRejected):
        retcode = _RETCODES.get(exc.error_code, c.TRADE_RETCODE_REJECT)
        comment = f"{exc.error_code}: {exc.message}"
    elif isinstance(exc, RiskRejected):
        retcode, comment = c.TRADE_RETCODE_REJECT, f"RiskMonitor {exc}"
    elif isinstance(exc, NotCarried):
        retcode, comment = exc.retcode, f"Invalid request: {exc}"
    else:
        retcode, comment = c.TRADE_RETCODE_INVALID, f"Invalid request: {exc}"
    return _package_result(request, retcode, comment=comment)


async def _command(bridge: Bridge, r: TradeRequest, uuid: str) -> Callable[[], Awaitable[Any]]:
    """The Bridge call for ``r``; ``NotCarried`` (with the terminal's retcode) when there is
    none, or when a terminal would refuse it before the trade server."""
    action = r.action
    filling = _filling(r)
    if action == c.TRADE_ACTION_DEAL and r.position:
        await _closes(bridge, r)
        return lambda: bridge.close_position(
            r.position,
            r.volume,
            deviation=r.deviation or None,
            magic=r.magic,  # 0 as well: the deal carries the request's, as the package's does
            comment=r.comment or None,
            type_filling=filling,
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_DEAL:
        side = _SIDES.get(r.type)
        if side is None:
            raise NotCarried(f"a DEAL is a BUY (0) or a SELL (1), not type {r.type}")
        return lambda: bridge.send_order(
            r.symbol,
            side,
            r.volume,
            price=r.price or None,
            sl=r.sl or None,
            tp=r.tp or None,
            deviation=r.deviation or None,
            magic=r.magic or None,
            comment=r.comment or None,
            type_filling=filling,
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_PENDING:
        kind = _PENDING_TYPES.get(r.type)
        if kind is None:
            raise NotCarried(f"a pending order's type is 2 to 7, not {r.type}")
        expiration = _expiration(r, bridge)
        return lambda: bridge.place_order(
            r.symbol,
            kind,
            r.volume,
            r.price,
            sl=r.sl or None,
            tp=r.tp or None,
            expiration=expiration,
            stoplimit=r.stoplimit or None,
            magic=r.magic or None,
            comment=r.comment or None,
            type_filling=filling,
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_SLTP:
        position = _ticket(r.position, "position")
        return lambda: bridge.modify_position(position, sl=r.sl, tp=r.tp, uuid=uuid)
    if action == c.TRADE_ACTION_MODIFY:
        order = _ticket(r.order, "order")
        if r.price <= 0:  # the terminal takes the whole order: its price is not optional
            raise NotCarried("a MODIFY gives the order's price", c.TRADE_RETCODE_INVALID_PRICE)
        expiration = _expiration(r, bridge)
        return lambda: bridge.modify_order(
            order,
            price=r.price,
            sl=r.sl,
            tp=r.tp,
            expiration=expiration,
            stoplimit=r.stoplimit or None,
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_REMOVE:
        order = _ticket(r.order, "order")
        return lambda: bridge.cancel_order(order, uuid=uuid)
    if action == c.TRADE_ACTION_CLOSE_BY:
        position, by = _ticket(r.position, "position"), _ticket(r.position_by, "position_by")
        return lambda: bridge.close_by(position, by, uuid=uuid)
    raise NotCarried(f"action {action} is not a TRADE_ACTION_*")


async def _closes(bridge: Bridge, r: TradeRequest) -> None:
    """Check that a DEAL with ``position`` closes it, as the terminal does: a volume, the
    position's symbol, the side opposite to it (a CLOSE always trades that side)."""
    if r.volume <= 0:
        raise NotCarried("a DEAL needs a volume", c.TRADE_RETCODE_INVALID_VOLUME)
    value, _ = await bridge.mt5_read("positions_get", (), {"ticket": r.position})
    found = value.value or []
    if not found:
        raise NotCarried(f"no position #{r.position}", c.TRADE_RETCODE_POSITION_CLOSED)
    position = TradePosition(found[0]["fields"])
    if r.symbol and r.symbol != position.symbol:
        raise NotCarried(f"position #{r.position} is {position.symbol}, not {r.symbol}")
    if r.type != 1 - position.type:
        raise NotCarried(f"closing position #{r.position} takes the opposite type")


def _filling(r: TradeRequest) -> Filling:
    """The request's ``type_filling`` (0, FOK, when the script left it out, as the package
    sends it); one that is no ``ORDER_FILLING_*`` is the terminal's 10030."""
    filling = _FILLINGS.get(r.type_filling)
    if filling is None:
        raise NotCarried(
            f"type_filling {r.type_filling} is not an ORDER_FILLING_*",
            c.TRADE_RETCODE_INVALID_FILL,
        )
    return filling


def _ticket(value: int, key: str) -> int:
    if value <= 0:
        raise NotCarried(f"{key} is needed")
    return value


def _expiration(r: TradeRequest, bridge: Bridge) -> str | int:
    """``type_time`` and ``expiration`` as the Bridge takes them: the script gives the
    terminal's clock, as the package takes it, and the Bridge takes UTC."""
    if r.type_time == c.ORDER_TIME_GTC:
        return "GTC"
    if r.type_time == c.ORDER_TIME_DAY:
        return "DAY"
    if r.type_time not in (c.ORDER_TIME_SPECIFIED, c.ORDER_TIME_SPECIFIED_DAY):
        raise NotCarried(f"type_time {r.type_time} is not an ORDER_TIME_*")
    if r.expiration <= 0:
        raise NotCarried(
            "a SPECIFIED order needs its expiration", c.TRADE_RETCODE_INVALID_EXPIRATION
        )
    expiration = r.expiration
    if r.type_time == c.ORDER_TIME_SPECIFIED_DAY:  # to the end of that day
        expiration = expiration - expiration % _DAY_S + _DAY_S - 1
    return bridge.server_times.to_utc_s(expiration)


def _result(request: TradeRequest, answer: OrderFilled | OrderDone) -> OrderSendResult:
    retcode = answer.retcode or c.TRADE_RETCODE_DONE
    if isinstance(answer, OrderFilled):
        return _package_result(
            request,
            retcode,
            deal=answer.deal,
            order=answer.order,
            volume=answer.volume,
            price=answer.price,
            comment=answer.comment or "",
            answer=answer,
        )
    # No deal: the package's volume and price are 0.0 for a placed, changed or removed order.
    return _package_result(
        request, retcode, order=answer.order, comment=answer.comment or "", answer=answer
    )


def _package_result(
    request: TradeRequest,
    retcode: int,
    *,
    deal: int = 0,
    order: int = 0,
    volume: float = 0.0,
    price: float = 0.0,
    comment: str = "",
    answer: OrderFilled | OrderDone | OrderState | OrderRejected | None = None,
) -> OrderSendResult:
    """The package's result; ``answer``: where the terminal's quote, request counter and
    external retcode come from (0 where it gave none: a refusal of the bridge's own)."""
    bid = ask = 0.0
    request_id = external = 0
    if answer is not None:
        bid, ask = answer.bid or 0.0, answer.ask or 0.0
        request_id, external = answer.request_id or 0, answer.retcode_external or 0
    return OrderSendResult(
        (retcode, deal, order, volume, price, bid, ask, comment, request_id, external, request)
    )
