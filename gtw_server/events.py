"""The event socket: a ZeroMQ XPUB that publishes ticks, closed bars and state changes.

Subscribers are SUB sockets (``inf_bridge`` streams, or any ZeroMQ client: docs/PROTOCOL.md,
"Events"). XPUB tells the gateway which topics are wanted: libzmq passes on the first
subscription to a topic and the last unsubscription (a subscriber that leaves unsubscribes
everything), so ``wanted`` is the set of topics at least one subscriber holds, and the feed
polls the terminal for those only. A topic that is not one of ours (``parse_topic``) is never
polled; past ``max_topics`` new ones are not either: they are logged, and told so by an
``error`` event (``BUSY``) on their topic.

Each message is ``[topic, Event]``; ``Event.run`` is this run's id and ``Event.seq`` counts the
topic's messages from 1, so a subscriber sees a message it missed and a gateway restart.

A subscriber that does not read costs at most ``_SNDHWM`` queued messages: past that libzmq
drops its messages (PUB never blocks), and its next ``seq`` shows the gap. The gateway's
memory, and its orders, do not wait on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import zmq
from loguru import logger

from gtw_server.throttle import Throttle
from plumbing.drain import EdgeDrain
from protocol import (
    Bar,
    ErrorCode,
    Event,
    Tick,
    encode,
    parse_topic,
    state_topic,
    trade_topic,
)

__all__ = ["EventPublisher", "Topic"]

_SNDHWM: Final = 10_000  # messages queued per subscriber (a few seconds of every stream)
_SUBSCRIPTION_BYTES: Final = 4096  # subscriptions (~40 bytes), and the CURVE handshake's frames
Topic = tuple[str, str | None, str | None]  # (kind, symbol, timeframe), as parse_topic gives


class EventPublisher:
    """A bound XPUB socket at ``endpoint``; ``run`` names this run in every event."""

    def __init__(
        self,
        endpoint: str,
        *,
        run: str,
        max_topics: int,
        context: zmq.Context[zmq.Socket[bytes]],
        setup: Callable[[zmq.Socket[bytes]], None] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        """``setup`` configures the socket before it binds (CURVE, as the order socket's)."""
        sock: zmq.Socket[bytes] = context.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, _SNDHWM)
        sock.setsockopt(zmq.MAXMSGSIZE, _SUBSCRIPTION_BYTES)  # only subscriptions come in
        sock.setsockopt(zmq.LINGER, 0)  # events are not worth waiting for at shutdown
        try:
            if setup is not None:
                setup(sock)
            sock.bind(endpoint)
        except BaseException:
            sock.close(linger=0)
            raise
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.run = run
        self._sock = sock
        self._max_topics = max_topics
        self._throttle = throttle
        self._seq: dict[bytes, int] = {}
        self.wanted: dict[bytes, Topic] = {}  # subscribed topics that can be polled
        self.ignored = 0  # subscriptions to topics that are not ours, or past max_topics
        self.published = 0
        self._drain = EdgeDrain(sock)

    def start(self) -> None:
        """Start reading subscriptions."""
        self._drain.start(self._subscription)

    def close(self) -> None:
        self._drain.stop()
        self._sock.close(linger=0)

    # -- out ------------------------------------------------------------------------------------

    def tick(self, symbol: str, tick: Tick, topic: bytes) -> None:
        self._send(topic, self._event(topic, "tick", symbol=symbol, tick=tick))

    def bar(self, symbol: str, timeframe: str, bar: Bar, topic: bytes) -> None:
        self._send(topic, self._event(topic, "bar", symbol=symbol, timeframe=timeframe, bar=bar))

    def state(self, state: str, detail: str | None = None) -> None:
        """A gateway state change (``TERMINAL_LOST``, ``HALTED``, ...), to every subscriber of
        ``state;``."""
        topic = state_topic()
        self._send(topic, self._event(topic, "state", state=state, detail=detail))

    def trade(self, event: Event) -> None:
        """A trade event, as the event log numbered it (its ``seq`` is the log's, not this
        topic's count), to every subscriber of ``trade;``."""
        self._send(trade_topic(), event)

    def error(self, topic: bytes, code: ErrorCode, detail: str) -> None:
        """Say on ``topic`` why it cannot be served (an unknown symbol, too many topics)."""
        self._send(topic, self._event(topic, "error", code=code.value, detail=detail))

    def _event(
        self,
        topic: bytes,
        kind: str,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        tick: Tick | None = None,
        bar: Bar | None = None,
        state: str | None = None,
        detail: str | None = None,
        code: str | None = None,
    ) -> Event:
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        return Event(
            run=self.run,
            seq=seq,
            kind=kind,
            time=time.time(),
            symbol=symbol,
            timeframe=timeframe,
            tick=tick,
            bar=bar,
            state=state,
            detail=detail,
            code=code,
        )

    def _send(self, topic: bytes, event: Event) -> None:
        # XPUB never blocks: a subscriber whose queue is full loses this message (its seq
        # shows it).
        self._sock.send_multipart([topic, encode(event)], zmq.NOBLOCK)
        self.published += 1
        self._drain.after_send()

    # -- in -------------------------------------------------------------------------------------

    def _subscription(self, frames: list[bytes]) -> None:
        message = frames[0]
        if not message or message[0] not in (0, 1):
            return
        topic, subscribe = message[1:], message[0] == 1
        if not subscribe:
            self.wanted.pop(topic, None)
            return
        parsed = parse_topic(topic)
        if parsed is not None and len(self.wanted) < self._max_topics:
            self.wanted[topic] = parsed
            return
        self.ignored += 1
        why = "not a topic" if parsed is None else f"past max_topics ({self._max_topics})"
        if self._throttle is None or self._throttle.allow("ignored subscriptions"):
            logger.warning("subscription to {!r} not served: {}", topic[:48], why)
        if parsed is not None:
            # ZeroMQ will not say so again while it is held: unsubscribe and subscribe again
            # once others have left.
            self.error(topic, ErrorCode.BUSY, f"not served: this gateway polls {why}")
