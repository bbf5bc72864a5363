"""The gateway's ZeroMQ ROUTER socket, driven straight from the event loop (``EdgeDrain``:
every queued message read at each wake-up, and looked for again after each send).

What a peer that does not read its replies may cost is bounded in bytes: libzmq queues at most
``_SNDHWM`` replies for one peer, small ones; past that they are dropped and counted (its
orders stay journaled, so a retry of the same uuid gets the stored reply). A large reply (a
GET_POSITIONS of a big book) is tracked until libzmq has handed it to the kernel, and a peer
may hold at most ``_LARGE_BYTES`` of them (or one, however large): past that ``send`` refuses
it and says so, and the gateway answers the query with a short ``BUSY`` instead. (Only answers
with no side effect are refusable; an order's reply is small.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

import zmq
from loguru import logger

from gtw_server.throttle import Throttle
from plumbing.drain import EdgeDrain

__all__ = ["RouterTransport", "split_envelope"]

# A peer that never reads costs at most _SNDHWM small replies (PINGs: about 0.3 MB) plus
# _LARGE_BYTES of large ones; what the kernel's socket buffers hold is not the gateway's memory.
_SNDHWM: Final = 1000  # enough for a burst from a reading peer: libzmq sends it on as it can
_RCVHWM: Final = 1000  # requests waiting to be read: the loop drains them as they come
_LARGE: Final = 1024  # a reply this big or bigger is tracked until libzmq has let it go
_LARGE_BYTES: Final = 512 * 1024
_SWEEP_PEERS: Final = 256  # forget peers whose large replies have all gone, past this many


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split a ROUTER message into its routing envelope and its body frames.

    A DEALER client's message arrives as ``[identity, body]``; a REQ client's as
    ``[identity, b"", body]``. The envelope (with the empty delimiter when there is one) is
    sent back unchanged, which is what makes both kinds of client work.
    """
    if len(frames) > 1 and frames[1] == b"":
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


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
        # pyzmq copies a frame below this size even when told not to, and its tracker is then
        # done at once: a large reply must be zero-copy for the budget to see it held.
        sock.copy_threshold = 0
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
        self.dropped_replies = 0
        # Large replies not yet handed to the kernel, by peer: (tracker, size).
        self._large: dict[bytes, list[tuple[zmq.MessageTracker, int]]] = {}
        self._sweep_at = _SWEEP_PEERS

    def start(self, on_message: Callable[[list[bytes]], None]) -> None:
        """Start handing each message to ``on_message(frames)``."""
        self._drain.start(on_message)

    def pause(self) -> None:
        """Stop reading (messages wait in the socket)."""
        self._drain.stop()

    def send(self, frames: list[bytes], *, refusable: bool = False) -> bool:
        """Send one message; never blocks. A reply that cannot be delivered is counted. False
        when a large ``refusable`` reply was not sent because the peer holds its share of
        them unread."""
        sent = True
        try:
            if not refusable or len(frames[-1]) < _LARGE:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
            else:
                sent = self._send_large(frames)
        except zmq.Again:  # the peer's queue is full: it does not read its replies
            self.dropped_replies += 1
            if self._throttle is None or self._throttle.allow("dropped replies"):
                logger.warning("reply dropped: the client is not reading its replies")
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.dropped_replies += 1
            logger.debug("reply dropped: the client has disconnected")
        self._drain.after_send()
        return sent

    def _send_large(self, frames: list[bytes]) -> bool:
        """Send a large reply, unless the peer already holds its share of them unsent."""
        peer, size = frames[0], len(frames[-1])
        pending = [(t, n) for t, n in self._large.pop(peer, []) if not t.done]
        if pending and sum(n for _, n in pending) + size > _LARGE_BYTES:  # one always goes
            self._large[peer] = pending
            return False
        sent = self._sock.send_multipart(frames, zmq.NOBLOCK, copy=False, track=True)
        tracker = cast(zmq.MessageTracker, sent)  # track=True: always a tracker
        self._large[peer] = [*pending, (tracker, size)]
        if len(self._large) > self._sweep_at:  # peers come and go: keep only those who hold
            self._large = {
                p: held for p, held in self._large.items() if not all(t.done for t, _ in held)
            }
            self._sweep_at = max(_SWEEP_PEERS, 2 * len(self._large))
        return True

    def close(self) -> None:
        self.pause()
        self._sock.close()
