"""The circuit breaker: when it is open, new orders are refused at once, locally.

It opens for a reason: ``HEARTBEAT_FAILURE`` (the gateway stopped answering), ``DAILY_LOSS``
(the risk monitor saw equity fall too far), ``SECRET_REFUSED`` (the gateway refused this
node's secret in a signed PING: every order would be refused), ``MANUAL``. A heartbeat trip
closes by itself after a few healthy beats; any other needs a human: ``reset()``.

State changes are logged (``[CIRCUIT_OPEN]``, ``[CIRCUIT_CLOSED]``) and can be observed with
a callback or an async iterator::

    async for change in bridge.breaker.changes():
        print(change.is_open, change.reason)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from msgspec import Struct

from inf_bridge.audit import record
from protocol import AuditEvent

__all__ = [
    "DAILY_LOSS",
    "HEARTBEAT_FAILURE",
    "MANUAL",
    "SECRET_REFUSED",
    "BreakerChange",
    "CircuitBreaker",
]

HEARTBEAT_FAILURE: Final = "HEARTBEAT_FAILURE"
DAILY_LOSS: Final = "DAILY_LOSS"
SECRET_REFUSED: Final = "SECRET_REFUSED"
MANUAL: Final = "MANUAL"


class BreakerChange(Struct, frozen=True):
    """The breaker opened (with ``reason``) or closed, at ``time`` (epoch seconds)."""

    is_open: bool
    reason: str | None
    time: float


class CircuitBreaker:
    """Closed until ``trip(reason)``; ``reset()`` closes it again."""

    def __init__(self) -> None:
        self._reason: str | None = None
        self.opened_at: float | None = None
        self._listeners: list[Callable[[BreakerChange], None]] = []

    @property
    def is_open(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        """Why it is open (``None`` when closed)."""
        return self._reason

    def trip(self, reason: str) -> None:
        """Open the breaker. A breaker already open keeps its first reason, unless the new
        one needs a human to reset it and the old one did not."""
        upgrade = self._reason == HEARTBEAT_FAILURE and reason != HEARTBEAT_FAILURE
        if self._reason is not None and not upgrade:
            return
        self._reason = reason
        self.opened_at = time.time()
        record(
            AuditEvent.CIRCUIT_OPEN,
            f"reason={reason}: new orders are refused",
            level="WARNING",
            reason=reason,
        )
        self._notify()

    def reset(self) -> None:
        """Close the breaker, whatever opened it."""
        if self._reason is None:
            return
        self._reason = None
        self.opened_at = None
        record(AuditEvent.CIRCUIT_CLOSED, "orders are accepted again")
        self._notify()

    def recovered(self) -> None:
        """The heartbeat is healthy again: close a breaker that the heartbeat opened."""
        if self._reason == HEARTBEAT_FAILURE:
            self.reset()

    def add_listener(self, callback: Callable[[BreakerChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on every change; returns a function that removes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    async def changes(self) -> AsyncIterator[BreakerChange]:
        """Every change from now on, as it happens."""
        queue: asyncio.Queue[BreakerChange] = asyncio.Queue()
        remove = self.add_listener(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            remove()

    def _notify(self) -> None:
        change = BreakerChange(self.is_open, self._reason, time.time())
        for callback in list(self._listeners):
            callback(change)
