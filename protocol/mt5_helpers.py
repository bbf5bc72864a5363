"""The ``MetaTrader5`` package's own pure-Python helpers: ``Buy``, ``Sell`` and ``Close``.

They live in the wheel's ``__init__.py`` (docs/MT5_API.md section 1) and only call the public
functions, so they are written here against any terminal with that surface. As in the
package, they send a DEAL with ``deviation=10`` and no ``type_filling`` (hence FOK: refused
with 10030 on a symbol that does not allow it); ``Buy``/``Sell`` without a price, and
``Close``, retry up to 10 times with a fresh quote on a requote (10004) or no quotes (10021).
A ``volume`` must be a float, as ``order_send`` wants; ``Close`` returns True when every
position it tried closed, ``'Partially'`` when some did, False when none did, and None when
the terminal failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal, Protocol

from protocol import mt5_constants as c
from protocol.mt5_structs import OrderSendResult, Tick, TradePosition

__all__ = ["close", "helpers_for", "market_order"]

_DEVIATION: Final = 10
_TRIES: Final = 10
_RETRIED: Final = (c.TRADE_RETCODE_REQUOTE, c.TRADE_RETCODE_PRICE_OFF)


class _Terminal(Protocol):
    def order_send(self, /, *args: dict[str, Any], **kwargs: Any) -> OrderSendResult | None: ...

    def symbol_info_tick(self, symbol: str, /) -> Tick | None: ...

    def positions_get(
        self,
        *args: object,
        symbol: str | None = None,
        group: str | None = None,
        ticket: int | None = None,
    ) -> tuple[TradePosition, ...] | None: ...


def _raw_order(
    mt5: _Terminal,
    order_type: int,
    symbol: str,
    volume: float,
    price: float,
    *,
    comment: str | None,
    ticket: int | None,
) -> OrderSendResult | None:
    request: dict[str, Any] = {
        "action": c.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": order_type,
        "price": price,
        "deviation": _DEVIATION,
    }
    if comment is not None:
        request["comment"] = comment
    if ticket is not None:
        request["position"] = ticket
    return mt5.order_send(request)


def market_order(
    mt5: _Terminal,
    order_type: int,
    symbol: str,
    volume: float,
    price: float | None,
    *,
    comment: str | None,
    ticket: int | None,
) -> OrderSendResult | None:
    """``Buy`` (``order_type`` BUY) or ``Sell``: at ``price``, or at the current quote."""
    if price is not None:
        return _raw_order(mt5, order_type, symbol, volume, price, comment=comment, ticket=ticket)
    result = None
    for _ in range(_TRIES):
        tick = mt5.symbol_info_tick(symbol)
        if tick is None:
            return None
        quote = tick.ask if order_type == c.ORDER_TYPE_BUY else tick.bid
        result = _raw_order(mt5, order_type, symbol, volume, quote, comment=comment, ticket=ticket)
        if result is None or result.retcode not in _RETRIED:
            break
    return result


def close(
    mt5: _Terminal, symbol: str, *, comment: str | None, ticket: int | None
) -> bool | Literal["Partially"] | None:
    """``Close``: every position of ``symbol``, or the one with ``ticket``."""
    if ticket is not None:
        positions = mt5.positions_get(ticket=ticket)
    else:
        positions = mt5.positions_get(symbol=symbol)
    if positions is None:
        return None
    tried = done = 0
    for position in positions:
        tried += 1
        for _ in range(_TRIES):
            tick = mt5.symbol_info_tick(symbol)
            if tick is None:
                return None
            if position.type == c.POSITION_TYPE_BUY:
                side, price = c.ORDER_TYPE_SELL, tick.bid
            else:
                side, price = c.ORDER_TYPE_BUY, tick.ask
            volume = position.volume
            result = _raw_order(
                mt5, side, symbol, volume, price, comment=comment, ticket=position.ticket
            )
            if result is None:
                return None
            if result.retcode not in _RETRIED:
                done += result.retcode == c.TRADE_RETCODE_DONE
                break
    if done:
        return True if done == tried else "Partially"
    return False


def helpers_for(mt5: Any) -> dict[str, Callable[..., Any]]:
    """``Buy``, ``Sell`` and ``Close`` with the package's signatures, calling ``mt5``'s own
    functions (a module: one whose ``order_send`` is patched uses the patched one, as the
    package's helpers, which call their module's globals, do)."""

    def market(order_type: int) -> Callable[..., OrderSendResult | None]:
        def order(
            symbol: str,
            volume: float,
            price: float | None = None,
            *,
            comment: str | None = None,
            ticket: int | None = None,
        ) -> OrderSendResult | None:
            return market_order(
                mt5, order_type, symbol, volume, price, comment=comment, ticket=ticket
            )

        return order

    def close_all(
        symbol: str, *, comment: str | None = None, ticket: int | None = None
    ) -> bool | Literal["Partially"] | None:
        return close(mt5, symbol, comment=comment, ticket=ticket)

    return {
        "Buy": market(c.ORDER_TYPE_BUY),
        "Sell": market(c.ORDER_TYPE_SELL),
        "Close": close_all,
    }
