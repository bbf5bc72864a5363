"""Reading a ZeroMQ socket straight from the event loop, as both sides do.

ZeroMQ signals readiness on an edge-triggered file descriptor: one wake-up may stand for many
queued messages, and any send on the socket may swallow the next edge. So ``EdgeDrain``
reads every queued message without blocking at each wake-up (3-5x the pipelined throughput of
one wake-up per message; docs/ARCHITECTURE.md, "Drain, don't await per message"), yields to
the loop after ``batch`` of them so that replies and timers still run, and looks again after
each send (``after_send``). No future or task is created per message, and a handler that raises
strands nothing: the rest are read on the next turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, cast

import zmq

__all__ = ["EdgeDrain"]

_BATCH: Final = 256  # messages handled per wake-up before yielding to the loop
# Plain ints: pyzmq's IntFlag arithmetic costs a microsecond per message for nothing.
_EVENTS: Final = int(zmq.EVENTS)
_POLLIN: Final = int(zmq.POLLIN)
_NOBLOCK: Final = int(zmq.NOBLOCK)


def _nothing(*args: object) -> None:
    """Nothing to do."""


class EdgeDrain:
    """Once started, hands each message of ``sock`` to ``on_frames(frames)``; ``after()``
    runs at the end of each wake-up (the client wakes its writers there)."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        *,
        after: Callable[[], None] = _nothing,
        batch: int = _BATCH,
    ) -> None:
        self._sock = sock
        self._on_frames: Callable[[list[bytes]], None] = _nothing
        self._after = after
        self._batch = batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False

    def start(self, on_frames: Callable[[list[bytes]], None]) -> None:
        """Watch the socket from the running loop; what arrived before is read at once."""
        self._on_frames = on_frames
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._drain)
        self.schedule()

    def stop(self) -> None:
        """Stop watching (messages wait in the socket)."""
        if self._loop is not None and not self._sock.closed:
            self._loop.remove_reader(self._sock.fileno())
        self._loop = None

    def after_send(self) -> None:
        """A send may have consumed the read edge: look for messages already queued."""
        if cast(int, self._sock.get(_EVENTS)) & _POLLIN:
            self.schedule()

    def schedule(self) -> None:
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        if self._sock.closed:
            return
        more = True  # until the socket says it is empty (or cannot be read: not again)
        try:
            for _ in range(self._batch):
                try:
                    frames = self._sock.recv_multipart(_NOBLOCK)
                except zmq.Again:
                    more = False
                    break
                except zmq.ZMQError:
                    more = False
                    raise
                self._on_frames(frames)
        finally:
            # More may be queued (a full batch, or a handler that raised: the loop logs it),
            # and the edge that announced them is spent: continue after others had a turn.
            if more:
                self.schedule()
            self._after()
