"""Who goes next into the worker's pipe: orders before market data.

The worker runs one call at a time, and ``depth`` calls may wait in its pipe. ``Lanes`` hands
those places out: a call of the foreground lane (orders, their look-ups, the terminal's health)
takes the first free place; a background call (market data: requests and the event feed's
polls, the trade watcher's looks) takes one only when no foreground call is waiting, and at most
one background call is in the pipe at a time. So an order never waits behind more than the one
background call already running, however much data is asked for.

Orders that never stop coming would keep the background waiting for ever: prices, trade events
and the account's snapshot would stand still through a burst of orders, just when they matter.
So a background call that has waited ``patience_s`` takes the next free place, ahead of the
orders waiting then: under a full pipe an order waits behind at most one background call per
``patience_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Lanes"]


class Lanes:
    """``depth`` places in the pipe, shared by a foreground and a background lane."""

    def __init__(
        self,
        depth: int,
        *,
        patience_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = depth
        self._background_in = 0
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {False: deque(), True: deque()}
        self._patience_s = patience_s
        self._clock = clock
        self._since: dict[asyncio.Future[None], float] = {}  # when each background call asked

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
        if background:
            self._since[future] = self._clock()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(background)  # the place was given to us as we were cancelled
            else:
                self._waiting[background].remove(future)
            raise
        finally:
            self._since.pop(future, None)

    def release(self, background: bool) -> None:
        """Give the place back, and hand it on: the foreground lane first, unless the oldest
        background call has waited ``patience_s``."""
        self._free += 1
        if background:
            self._background_in -= 1
        for lane in (True, False) if self._overdue() else (False, True):
            queue = self._waiting[lane]
            while queue and self._may_enter(lane):
                future = queue.popleft()
                if not future.done():
                    self._enter(lane)
                    future.set_result(None)
            if queue and not lane:
                return  # the foreground still waits: the background waits behind it

    def _overdue(self) -> bool:
        """Whether the oldest background call waiting has waited ``patience_s``."""
        queue = self._waiting[True]
        return bool(queue) and self._clock() - self._since[queue[0]] >= self._patience_s

    def _may_enter(self, background: bool) -> bool:
        return self._free > 0 and not (background and self._background_in)

    def _enter(self, background: bool) -> None:
        self._free -= 1
        if background:
            self._background_in += 1
