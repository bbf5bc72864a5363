"""The event feed: polls the terminal for what subscribers want, and publishes it.

Every ``poll_interval_ms`` the feed looks at the topics the event socket's subscribers hold
(``EventPublisher.wanted``) and, if there are any, asks the worker for all of them in one
background call (``gtw_server.market``: behind every order). Ticks come with their cursor
(``time_msc`` of the last one published), so none is missed between two polls where the
terminal keeps tick history; a bar is published once it has closed. A symbol the terminal does
not know gets one ``error`` event on its topics and is not polled again until it is
unsubscribed.

It also publishes the gateway's state changes on ``state;``: the terminal lost and back, trading
halted and resumed, seen at each interval.
"""

from __future__ import annotations

import asyncio

from loguru import logger

from gtw_server.errors import TerminalError
from gtw_server.events import EventPublisher
from gtw_server.health import TerminalMonitor
from gtw_server.killswitch import KillSwitch
from gtw_server.market import BarCursor, Poll, Polled, TickCursor
from gtw_server.operations import POLL
from gtw_server.throttle import Throttle
from gtw_server.worker import TerminalWorker
from protocol import Timeframe, bar_topic, tick_topic

__all__ = ["MarketFeed"]


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
        self._refused: set[bytes] = set()  # topics of unknown symbols, until unsubscribed
        self._connected = monitor.connected
        self._halted = killswitch.halted
        self.polls = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._publish_state()
            poll = self._poll()
            if poll is not None and self._monitor.reachable:
                try:
                    polled = await self._worker.call(POLL, poll)
                except TerminalError as exc:
                    if self._throttle is None or self._throttle.allow("market feed"):
                        logger.warning("market data poll failed: {}", exc)
                else:
                    self.polls += 1
                    self._publish(polled)
            await asyncio.sleep(max(0.0, started + self._interval_s - loop.time()))

    def _publish_state(self) -> None:
        connected, halted = self._monitor.connected, self._killswitch.halted
        if connected != self._connected:
            self._connected = connected
            detail = self._monitor.describe()
            self._publisher.state("TERMINAL_BACK" if connected else "TERMINAL_LOST", detail)
        if halted != self._halted:
            self._halted = halted
            self._publisher.state("HALTED" if halted else "RESUMED", self._killswitch.reason)

    def _poll(self) -> Poll | None:
        """What to ask for: the wanted topics' cursors (forgetting the unwanted ones)."""
        wanted = self._publisher.wanted
        self._refused &= wanted.keys()
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
        if not ticks and not bars:
            return None
        return Poll(ticks=ticks, bars=list(bars.values()))

    def _publish(self, polled: Polled) -> None:
        publisher = self._publisher
        for symbol, ticks in polled.ticks.items():
            if symbol in self._ticks:  # still wanted
                self._ticks[symbol] = polled.cursors[symbol]
                topic = tick_topic(symbol)
                for tick in ticks:
                    publisher.tick(symbol, tick, topic)
        by_constant = {frame.constant: frame for frame in Timeframe}
        for cursor, bars in polled.bars:
            frame = by_constant[cursor.timeframe]
            key = (cursor.symbol, frame)
            if key in self._bars:
                self._bars[key] = cursor
                topic = bar_topic(cursor.symbol, frame.value)
                for bar in bars:
                    publisher.bar(cursor.symbol, frame.value, bar, topic)
        for symbol, reason in polled.failed.items():
            for topic, (_, name, _) in publisher.wanted.items():
                if name == symbol and topic not in self._refused:
                    self._refused.add(topic)
                    publisher.error(topic, reason)
