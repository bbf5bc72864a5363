"""The gateway's ZeroMQ ROUTER socket, driven straight from the event loop (``EdgeDrain``:
every queued message read at each wake-up, and looked for again after each send).

What a peer that does not read its replies may cost is bounded in bytes: libzmq queues at most
``_SNDHWM`` replies for one peer; a burst beyond that (a reading peer whose requests came in
one wake-up) waits in a backlog of the peer's own, sent again in order as its queue empties;
past ``_BACKLOG_BYTES`` a peer's new replies are dropped and counted. Its orders stay
journaled: a retry of the same uuid gets the stored reply.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final

import zmq
from loguru import logger

from gtw_server.throttle import Throttle
from plumbing.drain import EdgeDrain

__all__ = ["RouterTransport", "split_envelope"]

# A peer that never reads costs at most _SNDHWM replies in libzmq's queue plus _BACKLOG_BYTES
# here (about 0.75 MB of GET_POSITIONS replies on a book of 200 positions, plus the backlog);
# what the kernel's socket buffers hold is not the gateway's memory.
_SNDHWM: Final = 16
_BACKLOG_BYTES: Final = 512 * 1024
_RCVHWM: Final = 1000  # requests waiting to be read: the loop drains them as they come
_REPLY_OVERHEAD: Final = 200  # bytes a held reply costs beyond its frames (objects, deque)
_RETRY_MIN_S: Final = 0.002  # how soon a backlog is tried again, doubling while nothing moves
_RETRY_MAX_S: Final = 0.1


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split a ROUTER message into its routing envelope and its body frames.

    A DEALER client's message arrives as ``[identity, body]``; a REQ client's as
    ``[identity, b"", body]``. The envelope (with the empty delimiter when there is one) is
    sent back unchanged, which is what makes both kinds of client work.
    """
    if len(frames) > 1 and frames[1] == b"":
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


class _Backlog:
    """Replies waiting for one peer whose queue is full, and their size."""

    __slots__ = ("replies", "size")

    def __init__(self) -> None:
        self.replies: deque[list[bytes]] = deque()
        self.size = 0


def _size(frames: list[bytes]) -> int:
    """What holding ``frames`` costs, in bytes."""
    return _REPLY_OVERHEAD + sum(len(frame) for frame in frames)


class RouterTransport:
    """A bound ROUTER socket that hands each message to ``on_message(frames)``."""

    def __init__(
        self,
        endpoint: str,
        *,
        max_message_bytes: int,
        linger_ms: int = 1000,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        setup: Callable[[zmq.Socket[bytes]], None] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        """``setup`` configures the socket before it binds (CURVE); ``throttle`` limits the
        warnings about dropped replies."""
        self._context = context or zmq.Context.instance()
        self._throttle = throttle
        sock: zmq.Socket[bytes] = self._context.socket(zmq.ROUTER)
        # Fail loudly (EHOSTUNREACH) instead of dropping a reply to a peer that left.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # Oversized messages are dropped by libzmq before they reach Python.
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        sock.setsockopt(zmq.SNDHWM, _SNDHWM)
        sock.setsockopt(zmq.RCVHWM, _RCVHWM)
        sock.setsockopt(zmq.LINGER, linger_ms)  # let the last replies leave on close
        try:
            if setup is not None:
                setup(sock)
            sock.bind(endpoint)
        except BaseException:
            sock.close(linger=0)  # an open socket would keep the context's term() waiting
            raise
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sock = sock
        self._drain = EdgeDrain(sock)  # reads nothing until started: binding comes first
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped_replies = 0
        self._backlogs: dict[bytes, _Backlog] = {}
        self._retry: asyncio.TimerHandle | None = None
        self._retry_s = _RETRY_MIN_S

    def start(self, on_message: Callable[[list[bytes]], None]) -> None:
        """Start handing each message to ``on_message(frames)``."""
        self._loop = asyncio.get_running_loop()
        self._drain.start(on_message)

    def pause(self) -> None:
        """Stop reading (messages wait in the socket)."""
        self._drain.stop()

    def send(self, frames: list[bytes]) -> None:
        """Send one message; never blocks. A reply that cannot be delivered is counted."""
        peer = frames[0]
        if peer in self._backlogs:
            self._hold(peer, frames)  # behind the replies already waiting: keep the order
        else:
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:  # the peer's queue is full: it is slow, or does not read
                self._hold(peer, frames)
            except zmq.ZMQError as exc:
                if exc.errno != zmq.EHOSTUNREACH:
                    raise
                self.dropped_replies += 1
                logger.debug("reply dropped: the client has disconnected")
        self._drain.after_send()

    @property
    def held_bytes(self) -> int:
        """Bytes of replies waiting for peers whose queue is full."""
        return sum(backlog.size for backlog in self._backlogs.values())

    def _hold(self, peer: bytes, frames: list[bytes]) -> None:
        backlog = self._backlogs.setdefault(peer, _Backlog())
        size = _size(frames)
        if backlog.size + size > _BACKLOG_BYTES:
            self.dropped_replies += 1
            if self._throttle is None or self._throttle.allow("dropped replies"):
                logger.warning("reply dropped: the client is not reading its replies")
            return
        backlog.replies.append(frames)
        backlog.size += size
        if self._retry is None and self._loop is not None:
            self._retry_s = _RETRY_MIN_S
            self._retry = self._loop.call_later(self._retry_s, self._send_held)

    def _send_held(self) -> None:
        """Send what waits, each peer's in order, as far as their queues take it."""
        self._retry = None
        moved = False
        for peer, backlog in list(self._backlogs.items()):
            while backlog.replies:
                try:
                    self._sock.send_multipart(backlog.replies[0], zmq.NOBLOCK)
                except zmq.Again:
                    break
                except zmq.ZMQError as exc:
                    if exc.errno != zmq.EHOSTUNREACH:
                        raise
                    self.dropped_replies += len(backlog.replies)  # the peer has gone
                    backlog.replies.clear()
                    break
                backlog.size -= _size(backlog.replies.popleft())
                moved = True
            if not backlog.replies:
                del self._backlogs[peer]
        if self._backlogs and self._loop is not None:
            self._retry_s = _RETRY_MIN_S if moved else min(self._retry_s * 2, _RETRY_MAX_S)
            self._retry = self._loop.call_later(self._retry_s, self._send_held)

    def close(self) -> None:
        self.pause()
        if self._retry is not None:
            self._retry.cancel()
        self._sock.close()
