"""Who goes next into the worker's pipe: orders before market data.

The worker runs one call at a time, and ``depth`` calls may wait in its pipe. ``Lanes`` hands
those places out: a call of the foreground lane (orders, their look-ups, the terminal's health)
takes the first free place; a background call (market data: requests and the event feed's
polls) takes one only when no foreground call is waiting, and at most one background call is in
the pipe at a time. So an order never waits behind more than the one background call already
running, however much data is asked for.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Lanes"]


class Lanes:
    """``depth`` places in the pipe, shared by a foreground and a background lane."""

    def __init__(self, depth: int) -> None:
        self._free = depth
        self._background_in = 0
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {False: deque(), True: deque()}

    @property
    def waiting(self) -> int:
        """Calls waiting for a place, in both lanes."""
        return sum(len(queue) for queue in self._waiting.values())

    async def acquire(self, background: bool) -> None:
        """Wait for a place in the pipe for a call of the ``background`` lane (or not)."""
        if not self._waiting[False] and self._may_enter(background):
            self._enter(background)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[background].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(background)  # the place was given to us as we were cancelled
            else:
                self._waiting[background].remove(future)
            raise

    def release(self, background: bool) -> None:
        """Give the place back, and hand it on: the foreground lane first."""
        self._free += 1
        if background:
            self._background_in -= 1
        for lane in (False, True):
            queue = self._waiting[lane]
            while queue and self._may_enter(lane):
                future = queue.popleft()
                if not future.done():
                    self._enter(lane)
                    future.set_result(None)
            if queue:
                return  # the foreground still waits: the background waits behind it

    def _may_enter(self, background: bool) -> bool:
        return self._free > 0 and not (background and self._background_in)

    def _enter(self, background: bool) -> None:
        self._free -= 1
        if background:
            self._background_in += 1
