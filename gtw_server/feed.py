"""The event feed: polls the terminal for what subscribers want, and publishes it.

Every ``poll_interval_ms`` the feed looks at the topics the event socket's subscribers hold
(``EventPublisher.wanted``) and asks the worker (``gtw_server.market``, background calls: each
waits behind every order) for the symbols' latest ticks in one cheap call, then for what is new,
one call a symbol that has something: an order waits behind one symbol's read at most. Ticks
come with their cursor (``time_msc`` of the last one published), so none is missed between two
polls where the terminal keeps tick history; a bar is published once it has closed. A symbol the
terminal does not know gets an ``error`` event (``SYMBOL_NOT_FOUND``, or ``SYMBOL_AMBIGUOUS``
when several of its symbols are the name with a suffix) on its topics, again every
``_REFUSED_RETRY_S`` while it is subscribed (ZeroMQ does not say when a second subscriber comes),
and is not polled in between.

It also publishes the gateway's state changes on ``state;``: trading halted and resumed (at
once), the terminal lost and back (seen at each interval).
"""

from __future__ import annotations

import asyncio
from typing import Final

from loguru import logger

from gtw_server.errors import TerminalError, TerminalRefused
from gtw_server.events import EventPublisher
from gtw_server.health import TerminalMonitor
from gtw_server.killswitch import KillSwitch
from gtw_server.market import BarCursor, Poll, Polled, TickCursor, bars_due, ticks_due
from gtw_server.operations import LATEST, POLL
from gtw_server.throttle import Throttle
from gtw_server.worker import TerminalWorker
from protocol import Tick, Timeframe, bar_topic, tick_topic

__all__ = ["MarketFeed"]

_REFUSED_RETRY_S: Final = 5.0


class MarketFeed:
    """Feeds ``publisher`` from ``worker`` every ``interval_s``."""

    def __init__(
        self,
        worker: TerminalWorker,
        publisher: EventPublisher,
        monitor: TerminalMonitor,
        killswitch: KillSwitch,
        *,
        interval_s: float,
        throttle: Throttle | None = None,
    ) -> None:
        self._worker = worker
        self._publisher = publisher
        self._monitor = monitor
        self._killswitch = killswitch
        self._interval_s = interval_s
        self._throttle = throttle
        self._ticks: dict[str, TickCursor] = {}
        self._bars: dict[tuple[str, Timeframe], BarCursor] = {}
        # Topics of unknown symbols, and when they may be tried again.
        self._refused: dict[bytes, float] = {}
        self._connected = monitor.connected
        self.polls = 0
        killswitch.observers.append(self._halt_changed)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._publish_state()
            polls = self._polls()
            if polls and self._monitor.reachable:
                try:
                    await self._poll(polls)
                except TerminalError as exc:
                    if self._throttle is None or self._throttle.allow("market feed"):
                        logger.warning("market data poll failed: {}", exc)
            await asyncio.sleep(max(0.0, started + self._interval_s - loop.time()))

    async def _poll(self, polls: list[Poll]) -> None:
        """One cheap call for every symbol's latest tick, then one call a symbol that has
        something new: an order waits behind one symbol's read at most, and an interval with
        nothing new costs one call."""
        symbols = [symbol for poll in polls for symbol in _symbols(poll)]
        try:
            latest: dict[str, Tick] | None = await self._worker.call(LATEST, symbols)
        except TerminalRefused:
            latest = None  # a symbol the terminal does not know: each poll says which
        for poll in polls:
            if latest is None or _due(poll, latest):
                polled = await self._worker.call(POLL, poll)
                self.polls += 1
                self._publish(polled)

    def _publish_state(self) -> None:
        connected = self._monitor.connected
        if connected != self._connected:
            self._connected = connected
            detail = self._monitor.describe()
            self._publisher.state("TERMINAL_BACK" if connected else "TERMINAL_LOST", detail)

    def _halt_changed(self, halted: bool, reason: str | None) -> None:
        self._publisher.state("HALTED" if halted else "RESUMED", reason)

    def _polls(self) -> list[Poll]:
        """What to ask for, a poll a symbol: the wanted topics' cursors (forgetting the
        unwanted ones)."""
        wanted = self._publisher.wanted
        now = asyncio.get_running_loop().time()
        self._refused = {t: at for t, at in self._refused.items() if t in wanted and at > now}
        ticks: dict[str, TickCursor] = {}
        bars: dict[tuple[str, Timeframe], BarCursor] = {}
        for topic, (kind, symbol, frame) in wanted.items():
            if topic in self._refused or symbol is None:
                continue
            if kind == "tick":
                ticks[symbol] = self._ticks.get(symbol) or TickCursor()
            elif kind == "bar" and frame is not None:
                key = (symbol, Timeframe(frame))
                bars[key] = self._bars.get(key) or BarCursor(symbol, key[1].constant)
        self._ticks, self._bars = ticks, bars
        by_symbol: dict[str, Poll] = {}
        for symbol, cursor in ticks.items():
            by_symbol[symbol] = Poll(ticks={symbol: cursor})
        for (symbol, _), bar_cursor in bars.items():
            poll = by_symbol.get(symbol) or Poll()
            by_symbol[symbol] = Poll(ticks=poll.ticks, bars=[*poll.bars, bar_cursor])
        return list(by_symbol.values())

    def _publish(self, polled: Polled) -> None:
        publisher = self._publisher
        for symbol, ticks in polled.ticks.items():
            if symbol in self._ticks:  # still wanted
                self._ticks[symbol] = polled.cursors[symbol]
                topic = tick_topic(symbol)
                for tick in ticks:
                    publisher.tick(symbol, tick, topic)
        for cursor, bars in polled.bars:
            frame = Timeframe.of(cursor.timeframe)
            key = (cursor.symbol, frame)
            if key in self._bars:
                self._bars[key] = cursor
                topic = bar_topic(cursor.symbol, frame.value)
                for bar in bars:
                    publisher.bar(cursor.symbol, frame.value, bar, topic)
        retry_at = asyncio.get_running_loop().time() + _REFUSED_RETRY_S
        for symbol, (code, reason) in polled.failed.items():
            for topic, (_, name, _) in publisher.wanted.items():
                if name == symbol and topic not in self._refused:
                    self._refused[topic] = retry_at
                    publisher.error(topic, code, reason)


def _symbols(poll: Poll) -> set[str]:
    return {*poll.ticks, *(cursor.symbol for cursor in poll.bars)}


def _due(poll: Poll, latest: dict[str, Tick]) -> bool:
    """Whether ``poll`` may find something new, given its symbol's latest tick (the test
    ``MarketReader.poll`` makes before it reads history)."""
    return any(ticks_due(cursor, latest[symbol]) for symbol, cursor in poll.ticks.items()) or any(
        bars_due(cursor, latest[cursor.symbol]) for cursor in poll.bars
    )
