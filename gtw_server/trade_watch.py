"""The trade watcher: what happened in the account, found by looking, since the terminal never
tells.

Every ``interval_s`` the watcher takes one look through the worker (a background call, so it
waits behind every order, ``gtw_server.lanes``): the account, the positions, the pending
orders, the deals after the last one seen, and the history's record of each pending order that
is no longer active. From the difference with the last look it makes the trade events:

- ``deal``: every new deal, whoever made it (the bridge, SL, TP, a stop-out, the terminal by
  hand, another program); ``uuid`` when its comment carries the tag of a request the gateway
  sent (``gtw_server.tagging``);
- ``order``: a pending order ``PLACED``, ``MODIFIED``, ``TRIGGERED`` (a stop-limit turned into
  its limit order), and on leaving ``FILLED``, ``CANCELLED``, ``EXPIRED`` or ``REJECTED``. An
  order placed and gone between two looks is found in the history (it has a ticket past the
  highest seen): both its events are told. Changes are seen as states, so two modifications
  between two looks are one ``MODIFIED``;
- ``account``: balance, credit or margin changed (at once), equity or margin level changed (at
  most once per ``account_interval_s``).

They are committed to the event log with the watcher's place (the last deal, the orders as
seen) before anything is published, so a crash between the two loses nothing: the next start
looks again from the committed place. The last look also answers GET_ACCOUNT and GET_POSITIONS
(``snapshot``), so those never wait behind orders.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

import anyio
import msgspec
from loguru import logger
from msgspec import Struct

from gtw_server.errors import EventLogError, TerminalError
from gtw_server.event_log import EventLog
from gtw_server.events import EventPublisher
from gtw_server.operations import WATCH
from gtw_server.tagging import tag_of
from gtw_server.throttle import Throttle
from gtw_server.trades import HistoryTally, Watch, Watched
from gtw_server.worker import TerminalWorker
from protocol import Account, Deal, Event, Order, Position

__all__ = ["Snapshot", "TradeWatcher"]

_ENDED: Final = {
    1: "CANCELLED",  # ORDER_STATE_PLACED: gone without a state of its own
    2: "CANCELLED",
    3: "FILLED",  # partially, and the rest cancelled
    4: "FILLED",
    5: "REJECTED",
    6: "EXPIRED",
}
_STATE_ORDERS: Final = "orders"
_STATE_AFTER_DEAL: Final = "after_deal"
_STATE_DEALS_FROM: Final = "deals_from"
_STATE_AFTER_ORDER: Final = "after_order"
_orders_codec: Final = msgspec.json.Decoder(list[Order])


class Snapshot(Struct, frozen=True, kw_only=True):
    """The account and positions as last read: when the look was asked for (``asked_at``,
    ``time.time()``: it saw every order answered before), and when it came
    (``read_at``, ``time.monotonic()``); the broker's names of the symbol names resolved by
    then (``names``)."""

    account: Account
    positions: list[Position]
    asked_at: float
    read_at: float
    names: dict[str, str] = msgspec.field(default_factory=dict)

    def age_ms(self) -> float:
        return (time.monotonic() - self.read_at) * 1000

    def positions_of(self, symbol: str | None) -> list[Position] | None:
        """The positions, all or those of ``symbol`` by the broker's name for it; ``None``
        when that name has not been resolved yet (the terminal must be asked)."""
        if symbol is None:
            return self.positions
        name = self.names.get(symbol)
        return None if name is None else [p for p in self.positions if p.symbol == name]


class TradeWatcher:
    """Looks at the terminal through ``worker`` every ``interval_s``; keeps what it finds in
    ``log`` and publishes it on ``publisher`` (``None``: no event socket)."""

    def __init__(
        self,
        worker: TerminalWorker,
        log: EventLog,
        publisher: EventPublisher | None,
        *,
        run: str,
        owner: Callable[[str], str | None],
        interval_s: float,
        account_interval_s: float,
        throttle: Throttle | None = None,
    ) -> None:
        """``owner(tag)`` is the uuid of the request that sent the order with ``tag``."""
        self._worker = worker
        self._log = log
        self._publisher = publisher
        self._run = run
        self._owner = owner
        self._interval_s = interval_s
        self._account_interval_s = account_interval_s
        self._throttle = throttle
        self.snapshot: Snapshot | None = None
        self.looks = 0
        self._orders: dict[int, Order] | None = None  # None until the committed place is read
        self._after_deal = 0
        self._after_order = 0
        self._deals_from = 0
        self._tally = HistoryTally()  # what lets a look read only the recent history
        self._account: Account | None = None  # as last published
        self._account_at = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.look()
            except (TerminalError, EventLogError) as exc:
                if self._throttle is None or self._throttle.allow("trade watcher"):
                    logger.warning("trade events: the look failed ({}); looking again", exc)
            await asyncio.sleep(max(0.0, started + self._interval_s - loop.time()))

    async def look(self) -> list[Event]:
        """One look: commit and publish what changed; return the events, numbered."""
        if self._orders is None:
            await anyio.to_thread.run_sync(self._restore)
        assert self._orders is not None
        asked_at = time.time()  # the terminal's calls run in turn: it sees what came before
        watch = Watch(
            after_deal=self._after_deal,
            deals_from=self._deals_from,
            after_order=self._after_order,
            known=list(self._orders),
            **self._tally.ask(self._deals_from),
        )
        watched: Watched = await self._worker.call(WATCH, watch)
        self.snapshot = Snapshot(
            account=watched.account,
            positions=watched.positions,
            asked_at=asked_at,
            read_at=time.monotonic(),
            names=watched.names,
        )
        # In the order they happen: orders placed or changed, deals, orders gone, the account.
        placed, gone = self._order_changes(watched)
        events = [*placed, *self._deals(watched), *gone, *self._account_change(watched)]
        after_deal = watched.deals[-1].ticket if watched.deals else self._after_deal
        orders = {order.ticket: order for order in watched.orders}
        after_order = watched.last_order
        # The terminal's own times, never this machine's clock: a clock that jumps ahead and
        # back must not move the window past deals not yet seen.
        deals_from = max(
            (
                self._deals_from,
                *(d.time for d in watched.deals),
                *(o.time_setup for o in watched.brief),
            )
        )
        # Not the orders' current prices: they move at every tick, and are not a change.
        moved = (_book(orders), after_deal, after_order, deals_from) != (
            _book(self._orders),
            self._after_deal,
            self._after_order,
            self._deals_from,
        )
        if events or moved:
            state = {
                _STATE_ORDERS: msgspec.json.encode(list(orders.values())),
                _STATE_AFTER_DEAL: str(after_deal).encode(),
                _STATE_AFTER_ORDER: str(after_order).encode(),
                _STATE_DEALS_FROM: str(deals_from).encode(),
            }
            events = await anyio.to_thread.run_sync(self._log.append, events, state)
        self._orders, self._after_deal, self._after_order = orders, after_deal, after_order
        self._deals_from = deals_from
        self._tally.add(watched)
        if any(event.kind == "account" for event in events):
            self._account, self._account_at = watched.account, time.monotonic()
        self.looks += 1
        if events and self._publisher is not None:
            for event in events:
                self._publisher.trade(event)
        return events

    def _restore(self) -> None:
        """Read the place the last committed look ended at (nothing: start from now, with
        the last day's deals)."""
        stored = self._log.state(_STATE_ORDERS)
        self._orders = {o.ticket: o for o in _orders_codec.decode(stored)} if stored else {}
        after = self._log.state(_STATE_AFTER_DEAL)
        self._after_deal = int(after) if after else 0
        after_order = self._log.state(_STATE_AFTER_ORDER)
        self._after_order = int(after_order) if after_order else 0
        since = self._log.state(_STATE_DEALS_FROM)
        self._deals_from = int(since) if since else int(time.time())

    # -- the differences --------------------------------------------------------------------

    def _event(
        self,
        kind: str,
        symbol: str | None,
        *,
        deal: Deal | None = None,
        order: Order | None = None,
        account: Account | None = None,
        change: str | None = None,
        uuid: str | None = None,
    ) -> Event:
        """An event to number (``seq`` is the log's, given when it is committed)."""
        return Event(
            run=self._run,
            seq=0,
            kind=kind,
            time=time.time(),
            symbol=symbol,
            deal=deal,
            order=order,
            account=account,
            change=change,
            uuid=uuid,
        )

    def _uuid(self, comment: str) -> str | None:
        tag = tag_of(comment)
        return self._owner(tag) if tag else None

    def _deals(self, watched: Watched) -> list[Event]:
        return [
            self._event("deal", deal.symbol or None, deal=deal, uuid=self._uuid(deal.comment))
            for deal in watched.deals
        ]

    def _order_changes(self, watched: Watched) -> tuple[list[Event], list[Event]]:
        """The order events of a look: orders placed, modified or triggered, and orders gone
        (placed and gone between two looks: in both)."""
        before = self._orders or {}
        placed: list[Event] = []
        gone: list[Event] = []
        for order in watched.orders:
            was = before.get(order.ticket)
            if was is None:
                change = "PLACED"
            elif was.type != order.type:
                change = "TRIGGERED"
            elif _terms(was) != _terms(order):
                change = "MODIFIED"
            else:
                continue
            placed.append(self._order_event(order, change))
        for order in watched.brief:  # placed and gone between two looks
            if order.ticket not in before:
                placed.append(self._order_event(order, "PLACED"))
                gone.append(self._order_event(order, _ENDED.get(order.state, "CANCELLED")))
        active = {order.ticket for order in watched.orders}
        ended = {order.ticket: order for order in watched.ended}
        for ticket, was in before.items():
            if ticket in active:
                continue
            last = ended.get(ticket)
            change = _ENDED.get(last.state, "CANCELLED") if last else "CANCELLED"
            gone.append(self._order_event(last or was, change))
        return placed, gone

    def _order_event(self, order: Order, change: str) -> Event:
        return self._event(
            "order", order.symbol, order=order, change=change, uuid=self._uuid(order.comment)
        )

    def _account_change(self, watched: Watched) -> list[Event]:
        """The account event due, if any: the first of a run, a change of balance, credit or
        margin, or (``account_interval_s`` after the last) of equity or margin level."""
        account, last = watched.account, self._account
        if last is not None:
            moved = (account.balance, account.credit, account.margin) != (
                last.balance,
                last.credit,
                last.margin,
            )
            drifted = (account.equity, account.margin_level) != (last.equity, last.margin_level)
            due = time.monotonic() - self._account_at >= self._account_interval_s
            if not moved and not (drifted and due):
                return []
        return [self._event("account", None, account=account)]


def _book(orders: dict[int, Order]) -> dict[int, tuple[int, tuple[float, ...]]]:
    """The pending orders as the events see them: their type and terms."""
    return {ticket: (order.type, _terms(order)) for ticket, order in orders.items()}


def _terms(order: Order) -> tuple[float, ...]:
    """What a modification, or a partial fill, changes of a pending order."""
    return (
        order.price_open,
        order.price_stoplimit,
        order.sl,
        order.tp,
        order.time_expiration,
        order.type_time,
        order.volume_current,
    )
