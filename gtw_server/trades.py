"""Pending orders and the history in terms of the ``MetaTrader5`` API: what the worker runs for
GET_ORDERS and GET_HISTORY, and the look the trade watcher takes at each interval (``watch``).

``TradeReader`` runs in the terminal worker beside ``TerminalAdapter``, whose connection it
shares, and turns the package's ``TradeOrder`` and ``TradeDeal`` tuples into the wire's
``Order`` and ``Deal`` (every field, in the package's order). A history of more than
``max_rows`` entries is refused (``TOO_LARGE``) rather than sent.
"""

from __future__ import annotations

import time
from typing import Any, Final, Literal

import msgspec
from msgspec import Struct

from gtw_server.adapter import PENDING_ORDER_TYPES, TerminalAdapter
from gtw_server.errors import TerminalRefused
from protocol import Account, Deal, ErrorCode, Order, Position

__all__ = ["History", "HistoryQuery", "OrdersQuery", "TradeReader", "Watch", "Watched"]

_DAY_S: Final = 86_400
_YEAR_S: Final = 366 * _DAY_S


class OrdersQuery(Struct, frozen=True, kw_only=True):
    """GET_ORDERS for the worker: one filter at most."""

    symbol: str | None = None
    group: str | None = None
    ticket: int | None = None


class HistoryQuery(Struct, frozen=True, kw_only=True):
    """GET_HISTORY for the worker, in one of the forms ``GetHistory.problem`` accepted."""

    kind: Literal["DEALS", "ORDERS"]
    max_rows: int
    date_from: int | None = None
    date_to: int | None = None
    group: str | None = None
    ticket: int | None = None
    position: int | None = None


class History(Struct, frozen=True, kw_only=True):
    """The history's deals, or its orders (the one ``kind`` asked for; the other is empty)."""

    deals: list[Deal] = msgspec.field(default_factory=list)
    orders: list[Order] = msgspec.field(default_factory=list)


class Watch(Struct, frozen=True, kw_only=True):
    """What the trade watcher asks at each interval: the deals after ``after_deal`` (a ticket)
    made since ``deals_from`` (epoch seconds, the terminal's clock: the newest deal's time
    seen), what became of each of the pending orders
    ``known`` at the last look that is no longer active, and the pending orders after
    ``after_order`` that came and went between two looks."""

    after_deal: int
    deals_from: int
    after_order: int = 0
    known: list[int] = msgspec.field(default_factory=list)


class Watched(Struct, frozen=True, kw_only=True):
    """The terminal at one look: the account, positions and pending orders, the new deals
    (oldest first), the history's record of the orders that are gone, the pending orders
    placed and gone since the last look (``brief``, oldest first), and the highest order
    ticket seen (``last_order``)."""

    account: Account
    positions: list[Position]
    orders: list[Order]
    deals: list[Deal]
    ended: list[Order]
    brief: list[Order] = msgspec.field(default_factory=list)
    last_order: int = 0


class TradeReader:
    """The reads of pending orders and the history, over the adapter's terminal connection."""

    def __init__(self, adapter: TerminalAdapter) -> None:
        self._adapter = adapter
        self.mt5 = adapter.mt5

    def orders(self, query: OrdersQuery) -> list[Order]:
        self._adapter.ensure_connected()
        filters = {
            name: value
            for name, value in (
                ("symbol", query.symbol),
                ("group", query.group),
                ("ticket", query.ticket),
            )
            if value is not None
        }
        found = self.mt5.orders_get(**filters)
        if found is None:
            raise self._adapter.failed("orders_get")
        return [_struct(order, Order) for order in found]

    def history(self, query: HistoryQuery) -> History:
        self._adapter.ensure_connected()
        deals = query.kind == "DEALS"
        get = self.mt5.history_deals_get if deals else self.mt5.history_orders_get
        if query.ticket is not None:
            found = get(ticket=query.ticket)
        elif query.position is not None:
            found = get(position=query.position)
        elif query.group is not None:
            found = get(query.date_from, query.date_to, group=query.group)
        else:
            found = get(query.date_from, query.date_to)
        if found is None:
            raise self._adapter.failed("history_deals_get" if deals else "history_orders_get")
        if len(found) > query.max_rows:
            raise TerminalRefused(
                ErrorCode.TOO_LARGE,
                f"{len(found)} {'deals' if deals else 'orders'} found, over this gateway's limit "
                f"of {query.max_rows} per request ([gateway] max_rows); ask for a shorter range",
            )
        if deals:
            return History(deals=[_struct(deal, Deal) for deal in found])
        return History(orders=[_struct(order, Order) for order in found])

    def watch(self, query: Watch) -> Watched:
        """One look at the account, its positions, pending orders and new deals. Deals (and
        orders) are asked for from a day before ``deals_from`` (the history is kept in the
        trade server's time zone) to a year past now (this machine's clock may be behind the
        server's, or jump), and kept if their ticket is past ``after_deal``."""
        adapter = self._adapter
        account = adapter.account()
        positions = adapter.positions()
        orders = self.orders(OrdersQuery())
        until = max(int(time.time()), query.deals_from) + _YEAR_S
        window = (query.deals_from - _DAY_S, until)
        found = adapter.read("history_deals_get", *window)
        deals = sorted(
            (_struct(deal, Deal) for deal in found if deal.ticket > query.after_deal),
            key=lambda deal: deal.ticket,
        )
        active = {order.ticket for order in orders}
        ended: list[Order] = []
        for ticket in (ticket for ticket in query.known if ticket not in active):
            record = adapter.read("history_orders_get", ticket=ticket)
            ended.extend(_struct(order, Order) for order in record)
        history = adapter.read("history_orders_get", *window)
        new = [order for order in history if order.ticket > query.after_order]
        brief = sorted(
            (
                _struct(order, Order)
                for order in new
                if order.type in PENDING_ORDER_TYPES and order.ticket not in active
            ),
            key=lambda order: order.ticket,
        )
        last_order = max((query.after_order, *(o.ticket for o in new), *(o.ticket for o in orders)))
        return Watched(
            account=account,
            positions=positions,
            orders=orders,
            deals=deals,
            ended=ended,
            brief=brief,
            last_order=last_order,
        )


def _struct(item: Any, kind: type[Order] | type[Deal]) -> Any:
    # Not strict: a build of the package that gives an int where a float is must not make the
    # whole list unreadable.
    return msgspec.convert(item._asdict(), kind, strict=False)
