"""Live streams from the gateway's event socket: ticks, closed bars, gateway state changes.

    async with bridge.ticks("EURUSD", "GBPUSD") as ticks:
        async for tick in ticks:          # a protocol.Tick, with its .symbol
            ...

One SUB socket per ``Bridge`` (``EventHub``), opened with the first stream, separate from the
order socket: a stream never waits on an order, nor an order on a stream. Each stream has its
own bounded queue; a strategy that falls behind loses the oldest events, counted in
``dropped``, never memory or the order path.

Every event carries the gateway's run id and a sequence number per topic, so a stream knows
when it missed something: a skipped ``seq`` (a queue that overflowed on either side), or
another ``run`` (the gateway restarted; ZeroMQ reconnects and subscribes again by itself).
Each is a ``Gap`` in ``stream.gaps``, logged as a warning and handed to ``on_gap``; the
stream goes on. An ``error`` event (a symbol the terminal does not know, ``SYMBOL_NOT_FOUND``;
more topics than the gateway polls, ``BUSY``) ends the stream with ``RequestRefused``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Final, Generic, Self, TypeVar

import msgspec
import zmq
from loguru import logger

from inf_bridge.channel import connected_socket
from inf_bridge.errors import RequestRefused
from plumbing.drain import EdgeDrain
from protocol import Bar, ErrorCode, Event, Tick, decode_event, trade_topic

__all__ = ["EventHub", "Gap", "Stream"]

T = TypeVar("T", Tick, Bar, Event)
_QUEUE: Final = 10_000  # events kept for a stream that is not read, before the oldest go
_RCVHWM: Final = 100_000  # events libzmq holds for this process before dropping
_TRADE: Final = trade_topic()


class Gap(msgspec.Struct, frozen=True, kw_only=True):
    """Events of ``topic`` this stream did not get: ``missed`` of them (a seq skipped), or an
    unknown number because the gateway restarted (``restarted``; ``run`` is the new run)."""

    topic: str
    run: str
    missed: int | None = None
    restarted: bool = False


class Stream(Generic[T]):
    """An async iterator of one or more topics' events, as ``T`` (``Tick``, ``Bar`` or, for
    state changes, the ``Event`` itself). Closed by ``aclose()`` or by leaving ``async with``:
    its topics are unsubscribed (once no other stream holds them)."""

    def __init__(
        self,
        hub: EventHub,
        topics: list[bytes],
        pick: Callable[[Event], T | None],
        on_gap: Callable[[Gap], None] | None = None,
        maxsize: int = _QUEUE,
    ) -> None:
        self.topics = topics
        self.gaps: list[Gap] = []
        self.dropped = 0
        self._hub = hub
        self._pick: Callable[[Event], T | None] = pick
        self._on_gap = on_gap
        self._queue: deque[T] = deque(maxlen=maxsize)
        self._failure: RequestRefused | None = None
        self._ready: asyncio.Event = asyncio.Event()
        self._closed = False
        hub.add(self)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while not self._queue:
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

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
        if not self._closed:
            self._hub.remove(self)
            self.end()

    def end(self) -> None:
        """End the iteration once the queue is read (the Bridge closed, or ``aclose``)."""
        self._closed = True
        self._ready.set()

    # -- fed by the hub -------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        if event.kind == "error":
            self._failure = RequestRefused(
                event.code or ErrorCode.INTERNAL.value, event.detail or "this topic is not served"
            )
        elif (item := self._pick(event)) is not None:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1  # the deque lets the oldest go
            self._queue.append(item)
        self._ready.set()

    def gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        if self._on_gap is not None:
            self._on_gap(gap)


class EventHub:
    """The SUB socket of one Bridge, and the streams it feeds."""

    def __init__(
        self,
        endpoint: str,
        *,
        context: zmq.Context[zmq.Socket[bytes]],
        curve: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._context = context
        self._curve = curve
        self._socket: zmq.Socket[bytes] | None = None
        self._drain: EdgeDrain | None = None
        self._streams: dict[bytes, list[Stream[Tick] | Stream[Bar] | Stream[Event]]] = {}
        self._last: dict[bytes, tuple[str, int]] = {}  # topic -> (run, seq) last seen
        self.unreadable = 0

    def add(self, stream: Stream[T]) -> None:
        sock = self._socket or self._open()
        for topic in stream.topics:
            held = self._streams.setdefault(topic, [])
            if not held:
                sock.subscribe(topic)
            held.append(stream)

    def remove(self, stream: Stream[T]) -> None:
        for topic in stream.topics:
            held = self._streams.get(topic, [])
            if stream in held:
                held.remove(stream)
            if not held and self._socket is not None:
                self._streams.pop(topic, None)
                self._last.pop(topic, None)
                self._socket.unsubscribe(topic)

    def close(self) -> None:
        for streams in list(self._streams.values()):
            for stream in streams:
                stream.end()
        self._streams.clear()
        if self._drain is not None:
            self._drain.stop()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _open(self) -> zmq.Socket[bytes]:
        sock = connected_socket(
            self._context, zmq.SUB, self.endpoint, self._curve, {zmq.RCVHWM: _RCVHWM}
        )
        self._socket = sock
        self._drain = EdgeDrain(sock)
        self._drain.start(self._receive)
        return sock

    def _receive(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            self.unreadable += 1
            return
        topic, body = frames
        try:
            event = decode_event(body)
        except msgspec.DecodeError as exc:
            self.unreadable += 1
            logger.error("unreadable event on {!r}: {}", topic, exc)
            return
        streams = self._streams.get(topic)
        if not streams:
            return
        if gap := self._gap(topic, event):
            logger.warning("{}", _describe(gap))
            for stream in streams:
                stream.gap(gap)
        for stream in streams:
            stream.deliver(event)

    def _gap(self, topic: bytes, event: Event) -> Gap | None:
        if topic == _TRADE:
            return None  # numbered by the gateway's event log: TradeEvents reads it again
        last = self._last.get(topic)
        self._last[topic] = (event.run, event.seq)
        name = topic.decode(errors="replace")
        if last is None:
            # The first event of a topic: a gap only if it is not the run's first.
            return None
        run, seq = last
        if event.run != run:
            return Gap(topic=name, run=event.run, restarted=True)
        if event.seq != seq + 1:
            return Gap(topic=name, run=event.run, missed=max(0, event.seq - seq - 1))
        return None


def _describe(gap: Gap) -> str:
    if gap.restarted:
        return f"{gap.topic}: the gateway restarted (run {gap.run}); events in between are lost"
    return f"{gap.topic}: {gap.missed} event(s) missed"
