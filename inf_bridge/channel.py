"""The client's connection: one DEALER socket, requests matched to replies by uuid.

Any number of coroutines may have requests outstanding at once (no lock-step): each waits on
its own future, and replies resolve them as they arrive, in whatever order. The socket is
driven straight from the event loop, as the gateway's is (``plumbing.drain``): one wake-up on its
(edge-triggered) file descriptor reads every reply already queued, no future or task per message.

Socket options, and why:
- ``IMMEDIATE``: queue messages only on a live connection. While the gateway is down a
  send waits (and times out) instead of piling orders up to be delivered, stale, later; so a
  request that timed out before it could be sent was never sent (``GatewayUnreachable``),
  and one sent and not answered may have arrived (``GatewayTimeout``).
- ``LINGER 0``: on close, drop what was not sent; an order must never leave after its
  caller gave up on it.
- ZMTP heartbeats: notice a dead TCP connection (a pulled cable) within seconds.

``Transport`` is what ``Bridge`` asks of its connection; ``Channel`` is the real one, and a
test may give the Bridge another (``Bridge(..., transport=...)``), as httpx takes one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Protocol, cast

import msgspec
import zmq
from loguru import logger

from inf_bridge.errors import GatewayTimeout, GatewayUnreachable
from plumbing.drain import EdgeDrain
from protocol import Reply, Request, decode_reply, encode

__all__ = ["Channel", "Transport", "connected_socket"]

_RECONNECT_IVL_MS: Final = 100
_RECONNECT_IVL_MAX_MS: Final = 2000
_ZMTP_HEARTBEAT_MS: Final = 1000


class Transport(Protocol):
    """A connection to the gateway, as ``Bridge`` uses it (``Channel`` is the real one)."""

    async def open(self) -> None:
        """Connect; called once, before any request."""

    async def close(self) -> None:
        """Disconnect; the requests still waiting end (cancelled)."""

    async def request(
        self,
        request: Request,
        timeout: float,
        on_sent: Callable[[], None] | None = None,
    ) -> Reply:
        """Send ``request`` and return the reply to its uuid, within ``timeout`` s in all.

        Raises ``GatewayUnreachable`` when it could not be sent (nothing left this process;
        ``on_sent`` is then never called) and ``GatewayTimeout`` when it was sent and not
        answered. ``on_sent`` is called once the request has left, before its reply."""
        ...


def connected_socket(
    context: zmq.Context[zmq.Socket[bytes]],
    kind: int,
    endpoint: str,
    curve: tuple[bytes, bytes, bytes] | None,
    options: dict[int, int],
) -> zmq.Socket[bytes]:
    """A socket of ``kind`` connected to ``endpoint`` as the client's are (the order channel,
    the event streams): LINGER 0, quick reconnects, ZMTP heartbeats, CURVE with ``curve`` =
    (server public key, client public key, client secret key); then ``options``."""
    sock: zmq.Socket[bytes] = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, _RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, _RECONNECT_IVL_MAX_MS)
    sock.setsockopt(zmq.HEARTBEAT_IVL, _ZMTP_HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * _ZMTP_HEARTBEAT_MS)
    for option, value in options.items():
        sock.setsockopt(option, value)
    if curve is not None:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = curve
    sock.connect(endpoint)
    return sock


class Channel:
    """A DEALER connection to the gateway at ``endpoint`` (a ``Transport``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._curve = curve  # (server public key, client public key, client secret key)
        self._socket: zmq.Socket[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, asyncio.Future[tuple[Reply, bytes]]] = {}
        self._writable: list[asyncio.Future[None]] = []
        self._drain: EdgeDrain | None = None
        self.unmatched_replies = 0

    async def open(self) -> None:
        sock = connected_socket(
            self._context, zmq.DEALER, self.endpoint, self._curve, {zmq.IMMEDIATE: 1}
        )
        self._socket = sock
        self._loop = asyncio.get_running_loop()
        self._drain = EdgeDrain(sock, after=self._wake_writers)
        self._drain.start(self._deliver)

    async def close(self) -> None:
        if self._socket is not None and self._drain is not None:
            self._drain.stop()
            self._socket.close(linger=0)
        for future in self._waiting.values():
            future.cancel()
        for writable in self._writable:
            writable.cancel()
        self._waiting.clear()

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    async def request(
        self,
        request: Request,
        timeout: float,
        on_sent: Callable[[], None] | None = None,
    ) -> Reply:
        """Send ``request`` and return its reply, within ``timeout`` s in all (see
        ``Transport.request``)."""
        reply, _ = await self._exchange(request, timeout, on_sent)
        return reply

    async def request_with_body(self, request: Request, timeout: float) -> tuple[Reply, bytes]:
        """``Transport.request_with_body``."""
        return await self._exchange(request, timeout, None)

    async def _exchange(
        self,
        request: Request,
        timeout: float,
        on_sent: Callable[[], None] | None,
    ) -> tuple[Reply, bytes]:
        """Send ``request`` and return its reply and the frame after it, within ``timeout``.

        Raises ``GatewayUnreachable`` when it could not even be sent in that time (no
        connection: nothing left this process), ``GatewayTimeout`` when it was sent and no
        reply came. ``on_sent`` is called once the message is in the socket, before the reply
        can arrive (the audit trail's ``ZMQ_SENT``).
        """
        sock, loop = self._socket, self._loop
        if sock is None or loop is None:
            raise RuntimeError("the channel is not open")
        uuid = request.uuid
        if uuid in self._waiting:
            raise ValueError(f"a request with uuid {uuid} is already waiting for its reply")
        future: asyncio.Future[tuple[Reply, bytes]] = loop.create_future()
        self._waiting[uuid] = future
        frame = encode(request)
        sent = False
        try:
            async with asyncio.timeout(timeout):
                await self._send(sock, loop, frame)
                sent = True
                if on_sent is not None:
                    on_sent()
                return await future
        except TimeoutError:
            if not sent:
                raise GatewayUnreachable(
                    f"could not send {request.action} {uuid} within {timeout:g} s (no "
                    f"connection to the gateway at {self.endpoint}, or the send queue stayed "
                    "full); nothing was sent"
                ) from None
            raise GatewayTimeout(
                f"no reply to {request.action} {uuid} within {timeout:g} s"
            ) from None
        finally:
            self._waiting.pop(uuid, None)

    async def _send(
        self, sock: zmq.Socket[bytes], loop: asyncio.AbstractEventLoop, frame: bytes
    ) -> None:
        while True:
            try:
                sock.send(frame, zmq.NOBLOCK)
                break
            except zmq.Again:  # no live connection yet (IMMEDIATE), or the queue is full
                writable: asyncio.Future[None] = loop.create_future()
                self._writable.append(writable)
                try:
                    await writable
                finally:
                    if writable in self._writable:
                        self._writable.remove(writable)
        if self._drain is not None:
            self._drain.after_send()  # a send may swallow the descriptor's edge

    def _wake_writers(self) -> None:
        """After each wake-up: a send that waited for room (or a connection) may go now."""
        sock = self._socket
        if self._writable and sock is not None and cast(int, sock.get(zmq.EVENTS)) & zmq.POLLOUT:
            for writable in self._writable:
                if not writable.done():
                    writable.set_result(None)

    def _deliver(self, frames: list[bytes]) -> None:
        """A reply (a DEALER gets no envelope), with the frame of rows that may follow it."""
        try:
            reply = decode_reply(frames[0])
        except msgspec.DecodeError as exc:
            logger.error("unreadable reply from the gateway: {}", exc)
            return
        if reply.uuid is None:
            # Our requests are always readable, so this is a bug in one of them; no future
            # can be matched to it.
            logger.error("the gateway could not read a request: {}", reply.error_msg)
            return
        future = self._waiting.get(reply.uuid)
        if future is None or future.done():
            self.unmatched_replies += 1  # a late reply to a request we gave up on
            return
        future.set_result((reply, frames[1] if len(frames) > 1 else b""))
