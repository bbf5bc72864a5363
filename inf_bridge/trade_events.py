"""Trade events, each once and in order, even across an absence: ``bridge.events(since=seq)``.

    async for event in bridge.events(since=last_seen):
        match event:
            case DealEvent(deal=deal, reason=reason): ...     # a fill, an SL, a TP, a stop-out
            case OrderEvent(order=order, change=change): ...  # PLACED, FILLED, CANCELLED...
            case AccountEvent(account=account): ...
        last_seen = event.seq                                 # keep it: resume from there

The gateway numbers every trade event in its event log without gaps and keeps them for a week
(by default), so a strategy that was away (disconnected, restarted, too slow for the live
stream, or its gateway restarted) asks for what came after the last number it saw and misses
nothing. ``TradeEvents`` reads the log first (GET_EVENTS, a page at a time), then follows the
live stream (topic ``trade;``); a number skipped on the live stream, or a quiet second, sends
it back to the log. A log that is not the one the numbers came from (deleted, replaced) or
events pruned before they were read cannot be made good: each is a ``Gap`` in ``gaps``, handed
to ``on_gap``, and reading goes on from what the log has.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Self

import msgspec
from loguru import logger

from inf_bridge.errors import RequestRefused
from inf_bridge.streams import Gap, Stream
from protocol import MAX_EVENTS_PER_REQUEST, Account, Deal, ErrorCode, Event, Order, Reply, Status

__all__ = ["AccountEvent", "DealEvent", "OrderEvent", "TradeEvent", "TradeEvents"]

_QUIET_S: Final = 1.0  # with no live event for this long, the log is asked (a missed publish)
_NEWEST: Final = 2**63 - 1
# DEAL_REASON_* (docs/MT5_API.md): who or what made a deal.
_REASONS: Final = (
    "CLIENT",
    "MOBILE",
    "WEB",
    "EXPERT",
    "SL",
    "TP",
    "SO",
    "ROLLOVER",
    "VMARGIN",
    "SPLIT",
)


class DealEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A deal: a fill of a market or pending order, an SL, TP or stop-out, a close by hand.
    ``uuid`` is the request's when the bridge sent the order."""

    seq: int
    time: float
    deal: Deal
    uuid: str | None = None

    @property
    def reason(self) -> str:
        """Who or what made it: ``CLIENT``, ``MOBILE``, ``WEB``, ``EXPERT`` (a program, the
        bridge too), ``SL``, ``TP``, ``SO`` (stop-out), ..."""
        code = self.deal.reason
        return _REASONS[code] if 0 <= code < len(_REASONS) else str(code)

    @property
    def position(self) -> int:
        return self.deal.position_id


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A pending order ``PLACED``, ``MODIFIED``, ``TRIGGERED`` (a stop-limit became its limit
    order), ``FILLED``, ``CANCELLED``, ``EXPIRED`` or ``REJECTED``."""

    seq: int
    time: float
    order: Order
    change: str
    uuid: str | None = None


class AccountEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The account after its balance, credit or margin changed (or, at a bounded rate, its
    equity)."""

    seq: int
    time: float
    account: Account


TradeEvent = DealEvent | OrderEvent | AccountEvent


class TradeEvents:
    """An async iterator of the trade events after ``since`` (``None``: from now on).

    ``fetch(since, limit)`` asks the gateway's log (GET_EVENTS); ``live`` is the subscription
    to ``trade;``, opened before the first fetch so nothing falls between the two. ``seq`` is
    the number of the last event yielded and ``log`` the log it counts in: keep both to resume
    (``log`` lets a replaced log be told from the one ``since`` counts in).
    """

    def __init__(
        self,
        fetch: Callable[[int, int], Awaitable[Reply]],
        live: Stream[Event],
        since: int | None,
        *,
        log: str | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        to_utc: Callable[[Any], Any] = lambda record: record,
    ) -> None:
        self.seq = since
        self._to_utc = to_utc
        self.log = log
        self.gaps: list[Gap] = []
        self._fetch = fetch
        self._live = live
        self._on_gap = on_gap
        self._backlog: deque[Event] = deque()
        self._behind = True  # the log may hold events not yet read

    def __aiter__(self) -> Self:
        return self

    async def start(self) -> int:
        """Fix where the iteration starts, now (``since`` ``None``: at the log's end, so only
        what happens from now on is yielded); return that ``seq``. Iterating does it too, at
        its first step: call this before acting, to be told of everything the act causes."""
        if self.seq is None:
            await self._read_log()
        assert self.seq is not None
        return self.seq

    async def __anext__(self) -> TradeEvent:
        while True:
            if self._backlog:
                event = self._backlog.popleft()
                if self.seq is None or event.seq > self.seq:
                    self.seq = event.seq
                    if (typed := _typed(event, self._to_utc)) is not None:
                        return typed
                continue
            if self._behind or self.seq is None:
                await self._read_log()
                continue
            try:
                event = await asyncio.wait_for(anext(self._live), _QUIET_S)
            except TimeoutError:
                self._behind = True  # a publish lost before the subscription took: ask
                continue
            if event.log != self.log or event.seq > self.seq + 1:
                self._behind = True  # missed some, or another log: the log says which
            elif event.seq == self.seq + 1:
                self._backlog.append(event)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._live.aclose()

    async def _read_log(self) -> None:
        """One page of the log after ``seq`` into the backlog (with ``seq`` ``None``: only
        where the log ends)."""
        since = _NEWEST if self.seq is None else self.seq
        reply = await self._fetch(since, MAX_EVENTS_PER_REQUEST)
        if reply.status is not Status.OK or reply.log is None:
            raise RequestRefused(
                reply.error_code or ErrorCode.INTERNAL.value,
                reply.error_msg or "the gateway did not give its trade events",
            )
        if self.seq is None:
            self.log, self.seq = reply.log, reply.last_seq or 0
            return
        if (self.log is not None and reply.log != self.log) or self.seq > (reply.last_seq or 0):
            # Another log, or one that never counted this far: not the log ``seq`` is of.
            self._gap(Gap(topic="trade;", run=reply.log, restarted=True))
            self.log, self.seq = reply.log, 0
            return
        self.log = reply.log
        events = reply.events or []
        first = reply.first_seq or 0
        if first > self.seq + 1 and (not events or events[0].seq == first):
            self._gap(Gap(topic="trade;", run=reply.log, missed=first - self.seq - 1))
        self._backlog.extend(events)
        self._behind = len(events) == MAX_EVENTS_PER_REQUEST

    def _gap(self, gap: Gap) -> None:
        if gap.restarted:
            logger.warning(
                "trade events: the gateway has another event log ({}); events of the old one "
                "not read are lost, reading the new one from its start",
                gap.run,
            )
        else:
            logger.warning("trade events: {} events were pruned before they were read", gap.missed)
        self.gaps.append(gap)
        if self._on_gap is not None:
            self._on_gap(gap)


def _typed(event: Event, to_utc: Callable[[Any], Any]) -> TradeEvent | None:
    """The event as its type, its deal's or order's times by ``to_utc``; ``None`` for a kind
    this client does not know (a newer gateway's), which is skipped."""
    if event.deal is not None:
        deal = to_utc(event.deal)
        return DealEvent(seq=event.seq, time=event.time, deal=deal, uuid=event.uuid)
    if event.order is not None:
        return OrderEvent(
            seq=event.seq,
            time=event.time,
            order=to_utc(event.order),
            change=event.change or "",
            uuid=event.uuid,
        )
    if event.account is not None:
        return AccountEvent(seq=event.seq, time=event.time, account=event.account)
    return None
