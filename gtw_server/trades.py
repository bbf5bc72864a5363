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

__all__ = [
    "History",
    "HistoryQuery",
    "HistoryTally",
    "OrdersQuery",
    "TradeReader",
    "Watch",
    "Watched",
]

_DAY_S: Final = 86_400
_YEAR_S: Final = 366 * _DAY_S
_HOUR_S: Final = 3600
# A look's recent history starts this long before the newest deal seen (times are in whole
# seconds: that second's deals may still be arriving). Anything older that appears is seen by
# the counts, and read with the whole day: a longer overlap only costs every look more (at
# 1,000 deals a second, each second re-read is ~10 ms of the simulated worker's time).
_RECENT_S: Final = 1


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
    symbol: str | None = None


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
    # The history is asked for from ``day_from`` (an hour; default a day before
    # ``deals_from``). When the watcher has a tally of it (``HistoryTally``), how many deals
    # and orders since then it knows of: if the terminal holds no others than the recent
    # ones, only the recent history is read.
    day_from: int | None = None
    tallied_deals: int | None = None
    tallied_orders: int | None = None


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
    # The broker's name of each symbol name resolved so far (``TerminalAdapter.names``): what
    # a GET_POSITIONS filter answered from this look may select by.
    names: dict[str, str] = msgspec.field(default_factory=dict)
    # The deals and history orders counted by hour (by ``time`` and ``time_setup``): all of
    # them since ``day_from`` when the history was read whole, else only the new ones.
    whole: bool = True
    deal_hours: dict[int, int] = msgspec.field(default_factory=dict)
    order_hours: dict[int, int] = msgspec.field(default_factory=dict)


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
                ("symbol", query.symbol and self._adapter.filter_name(query.symbol)),
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
        elif query.symbol is not None:  # the group of the broker's name for it alone
            name = self._adapter.filter_name(query.symbol)
            found = get(query.date_from, query.date_to, group=name)
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
        """One look at the account, its positions, pending orders and new deals.

        Deals (and orders) are asked for from ``day_from`` (a day before ``deals_from`` by
        default: the history is kept in the trade server's time zone, and a terminal that was
        away syncs deals with their old times) to a year past now (this machine's clock may
        be behind the server's, or jump), and kept if their ticket is past ``after_deal``.
        Reading a day of history at every look costs as much as the day was busy (156 ms for
        40,000 deals in the simulator): with the watcher's tally, only the last seconds are
        read, unless the terminal's counts since ``day_from`` say something older came."""
        adapter = self._adapter
        account = adapter.account()
        positions = adapter.positions()
        orders = self.orders(OrdersQuery())
        until = max(int(time.time()), query.deals_from) + _YEAR_S
        day_from = query.deals_from - _DAY_S if query.day_from is None else query.day_from
        # What the tally counts: every deal and order since ``day_from``, or the new ones.
        recent = self._recent(query, day_from, until)
        counted_deals, counted_orders = recent or (
            adapter.read("history_deals_get", day_from, until),
            adapter.read("history_orders_get", day_from, until),
        )
        found = [deal for deal in counted_deals if deal.ticket > query.after_deal]
        history = [order for order in counted_orders if order.ticket > query.after_order]
        deals = sorted((_struct(deal, Deal) for deal in found), key=lambda deal: deal.ticket)
        active = {order.ticket for order in orders}
        ended: list[Order] = []
        for ticket in (ticket for ticket in query.known if ticket not in active):
            record = adapter.read("history_orders_get", ticket=ticket)
            ended.extend(_struct(order, Order) for order in record)
        brief = sorted(
            (
                _struct(order, Order)
                for order in history
                if order.type in PENDING_ORDER_TYPES and order.ticket not in active
            ),
            key=lambda order: order.ticket,
        )
        last_order = max(
            (query.after_order, *(o.ticket for o in history), *(o.ticket for o in orders))
        )
        return Watched(
            account=account,
            positions=positions,
            orders=orders,
            deals=deals,
            ended=ended,
            brief=brief,
            last_order=last_order,
            names=adapter.names,
            whole=recent is None,
            deal_hours=_hours(counted_deals, "time"),
            order_hours=_hours(counted_orders, "time_setup"),
        )

    def _recent(
        self, query: Watch, day_from: int, until: int
    ) -> tuple[list[Any], list[Any]] | None:
        """The new deals and history orders of the last seconds, if the terminal holds no
        others since ``day_from`` than those the watcher tallied; ``None``: read it whole."""
        if query.tallied_deals is None or query.tallied_orders is None:
            return None
        adapter = self._adapter
        since = query.deals_from - _RECENT_S
        deals = [
            deal
            for deal in adapter.read("history_deals_get", since, until)
            if deal.ticket > query.after_deal
        ]
        history = [
            order
            for order in adapter.read("history_orders_get", since, until)
            if order.ticket > query.after_order
        ]
        deals_total = adapter.read("history_deals_total", day_from, until)
        orders_total = adapter.read("history_orders_total", day_from, until)
        if deals_total != query.tallied_deals + len(deals):
            return None  # a deal with an older time (a terminal that was away): read it all
        if orders_total != query.tallied_orders + len(history):
            return None  # an order placed earlier has just ended, say
        return deals, history


class HistoryTally:
    """The deals and history orders the trade watcher knows of, counted by hour since the
    start of its window (``day_from``, an hour a day before the newest deal): what lets a look
    read only the recent history (``TradeReader.watch``). Nothing is tallied until a look
    has read the history whole: the first one, and any whose counts did not add up."""

    def __init__(self) -> None:
        self._deals: dict[int, int] | None = None
        self._orders: dict[int, int] | None = None

    def ask(self, deals_from: int) -> dict[str, int | None]:
        """What a ``Watch`` says of the history: ``day_from`` and the counts since then."""
        day_from = (deals_from - _DAY_S) // _HOUR_S * _HOUR_S
        if self._deals is None or self._orders is None:
            return {"day_from": day_from, "tallied_deals": None, "tallied_orders": None}
        for tally in (self._deals, self._orders):
            for hour in [hour for hour in tally if hour < day_from]:  # out of the window
                del tally[hour]
        return {
            "day_from": day_from,
            "tallied_deals": sum(self._deals.values()),
            "tallied_orders": sum(self._orders.values()),
        }

    def add(self, watched: Watched) -> None:
        """Count what a look found (all of it, when it read the history whole)."""
        if watched.whole or self._deals is None or self._orders is None:
            self._deals, self._orders = dict(watched.deal_hours), dict(watched.order_hours)
            return
        for tally, hours in (
            (self._deals, watched.deal_hours),
            (self._orders, watched.order_hours),
        ):
            for hour, count in hours.items():
                tally[hour] = tally.get(hour, 0) + count


def _hours(items: Any, field: str) -> dict[int, int]:
    """How many of ``items`` (deals or orders) fall in each hour of their ``field``."""
    hours: dict[int, int] = {}
    for item in items:
        hour = getattr(item, field) // _HOUR_S * _HOUR_S
        hours[hour] = hours.get(hour, 0) + 1
    return hours


def _struct(item: Any, kind: type[Order] | type[Deal]) -> Any:
    # Not strict: a build of the package that gives an int where a float is must not make the
    # whole list unreadable.
    return msgspec.convert(item._asdict(), kind, strict=False)
