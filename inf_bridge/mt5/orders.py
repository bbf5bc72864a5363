"""``order_send`` in terms of the ``Bridge``: the package's request, each action onto the signed,
journaled command it is, and the package's ``OrderSendResult`` back.

The request is checked first as the package's binding checks it (docs/MT5_API.md section 3):
integer keys must be ``int``, price and volume keys ``float``, ``symbol`` and ``comment``
strings of 29 UTF-16 units at most; a violation is ``None`` with ``(-2, 'Invalid "<key>"
argument')`` and nothing is sent. Missing keys are 0, 0.0 or ``''``, as there.

| ``action`` | the command |
|---|---|
| ``TRADE_ACTION_DEAL`` without ``position`` | ``send_order`` (``type`` 0 BUY, 1 SELL) |
| ``TRADE_ACTION_DEAL`` with ``position`` | ``close_position`` (``volume``: all or part) |
| ``TRADE_ACTION_PENDING`` | ``place_order`` (``type`` 2-7; ``type_time``/``expiration``) |
| ``TRADE_ACTION_SLTP`` | ``modify_position`` (``position``, ``sl``, ``tp``) |
| ``TRADE_ACTION_MODIFY`` | ``modify_order`` (``order``, ``price``, ``sl``, ``tp``, ...) |
| ``TRADE_ACTION_REMOVE`` | ``cancel_order`` (``order``) |
| ``TRADE_ACTION_CLOSE_BY`` | ``close_by`` (``position``, ``position_by``) |

What comes back is an ``OrderSendResult`` as the package's: the terminal's ``retcode``,
``deal``, ``order``, ``volume``, ``price``, its ``comment``, and the ``request`` as the script
wrote it (its ``comment`` too: the uuid tag the gateway puts in the order's comment is the
bridge's business). A refusal is a result too, as the package's: the terminal's retcode when
the terminal refused, or the one it would have given for what the gateway checks itself
(``NO_CHANGES`` 10025, ``INVALID_PRICE`` 10015, ``INVALID_EXPIRATION`` 10022, an unknown
ticket 10013); ``TRADE_RETCODE_REJECT`` (10006) when the bridge refused (the RiskMonitor,
the kill switch, a signature), its reason in ``comment``; ``TRADE_RETCODE_INVALID`` (10013)
for a request the bridge cannot carry (a type the action does not take, a missing ticket).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from inf_bridge.client import Bridge
from inf_bridge.errors import InvalidOrder, OrderRejected, RiskRejected
from inf_bridge.results import OrderDone, OrderFilled
from protocol import mt5_constants as c
from protocol.mt5_structs import OrderSendResult, TradeRequest

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
# The gateway's refusals that a terminal gives as a retcode of its own (the rest: REJECT).
_RETCODES: Final = {
    "NO_CHANGES": c.TRADE_RETCODE_NO_CHANGES,
    "INVALID_PRICE": c.TRADE_RETCODE_INVALID_PRICE,
    "INVALID_EXPIRATION": c.TRADE_RETCODE_INVALID_EXPIRATION,
    "ORDER_NOT_FOUND": c.TRADE_RETCODE_INVALID,
    "POSITION_NOT_FOUND": c.TRADE_RETCODE_INVALID,
}


class NotCarried(Exception):
    """A request the bridge has no command for (``TRADE_RETCODE_INVALID``)."""


def binding_error(request: Mapping[str, Any]) -> tuple[int, str] | None:
    """The binding's own refusal of ``request`` (``last_error()``), or ``None``."""
    for key in _INT_KEYS:
        value = request.get(key, 0)
        if not isinstance(value, int):  # bool is an int, as the binding takes it
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
    """The request as the package echoes it: every field, missing ones 0, 0.0 or ``''``."""
    defaults: dict[str, Any] = dict.fromkeys(_INT_KEYS, 0)
    defaults |= dict.fromkeys(_FLOAT_KEYS, 0.0) | dict.fromkeys(_TEXT_KEYS, "")
    return TradeRequest([request.get(name, defaults[name]) for name in TradeRequest.__match_args__])


async def send(bridge: Bridge, request: TradeRequest, uuid: str) -> OrderSendResult:
    """Send ``request`` as its command, with ``uuid``; its result, or the refusal's.
    Raises what the Bridge raises when nothing can be told (``GatewayTimeout``,
    ``OutcomeUnknown``, ``CircuitOpen``)."""
    try:
        answer = await _command(bridge, request, uuid)()
    except (OrderRejected, RiskRejected, InvalidOrder, NotCarried) as exc:
        return result_of_refusal(request, exc)
    return _result(request, answer)


def result_of_refusal(request: TradeRequest, exc: Exception) -> OrderSendResult:
    """The package's result for an order that was refused (nothing executed)."""
    if isinstance(exc, OrderRejected) and exc.retcode is not None:
        retcode, comment = exc.retcode, exc.message
    elif isinstance(exc, OrderRejected):
        retcode = _RETCODES.get(exc.error_code, c.TRADE_RETCODE_REJECT)
        comment = f"{exc.error_code}: {exc.message}"
    elif isinstance(exc, RiskRejected):
        retcode, comment = c.TRADE_RETCODE_REJECT, f"RiskMonitor {exc}"
    else:
        retcode, comment = c.TRADE_RETCODE_INVALID, f"Invalid request: {exc}"
    return _package_result(request, retcode, comment=comment)


def _command(bridge: Bridge, r: TradeRequest, uuid: str) -> Callable[[], Awaitable[Any]]:
    """The Bridge call for ``r`` (``NotCarried`` when there is none)."""
    action = r.action
    if action == c.TRADE_ACTION_DEAL and r.position:
        return lambda: bridge.close_position(
            r.position, r.volume or None, deviation=r.deviation or None, uuid=uuid
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
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_PENDING:
        kind = _PENDING_TYPES.get(r.type)
        if kind is None:
            raise NotCarried(f"a pending order's type is 2 to 7, not {r.type}")
        return lambda: bridge.place_order(
            r.symbol,
            kind,
            r.volume,
            r.price,
            sl=r.sl or None,
            tp=r.tp or None,
            expiration=_expiration(r),
            stoplimit=r.stoplimit or None,
            magic=r.magic or None,
            comment=r.comment or None,
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_SLTP:
        return lambda: bridge.modify_position(
            _ticket(r.position, "position"), sl=r.sl, tp=r.tp, uuid=uuid
        )
    if action == c.TRADE_ACTION_MODIFY:
        return lambda: bridge.modify_order(
            _ticket(r.order, "order"),
            price=r.price or None,
            sl=r.sl,
            tp=r.tp,
            expiration=_expiration(r),
            stoplimit=r.stoplimit or None,
            uuid=uuid,
        )
    if action == c.TRADE_ACTION_REMOVE:
        return lambda: bridge.cancel_order(_ticket(r.order, "order"), uuid=uuid)
    if action == c.TRADE_ACTION_CLOSE_BY:
        by = _ticket(r.position_by, "position_by")
        return lambda: bridge.close_by(_ticket(r.position, "position"), by, uuid=uuid)
    raise NotCarried(f"action {action} is not a TRADE_ACTION_*")


def _ticket(value: int, key: str) -> int:
    if value <= 0:
        raise NotCarried(f"{key} is needed")
    return value


def _expiration(r: TradeRequest) -> str | int:
    """``type_time`` and ``expiration`` as the Bridge takes them."""
    if r.type_time == c.ORDER_TIME_DAY:
        return "DAY"
    if r.type_time in (c.ORDER_TIME_SPECIFIED, c.ORDER_TIME_SPECIFIED_DAY):
        return r.expiration
    return "GTC"


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
        )
    return _package_result(
        request,
        retcode,
        order=answer.order,
        volume=request.volume,
        price=request.price,
        comment=answer.comment or "",
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
) -> OrderSendResult:
    # bid and ask are the terminal's quote at a requote; request_id its own counter: the
    # gateway's reply carries neither.
    return OrderSendResult((retcode, deal, order, volume, price, 0.0, 0.0, comment, 0, 0, request))
