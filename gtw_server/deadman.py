"""The dead-man's switch: halt new orders when the strategies have gone silent.

Only a client that proves it holds the secret counts as present: a verified signature on an
order, a HALT or RESUME, or a signed PING (a ``Bridge``'s heartbeat). Strangers' frames,
unsigned PINGs and refused signatures do not, so nobody who merely reaches the port can keep
a gateway trading after its strategies died. With signature validation off nothing is
authenticated, and any readable request counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gtw_server.killswitch import KillSwitch

__all__ = ["DeadMansSwitch"]


class DeadMansSwitch:
    """Halts ``killswitch`` after ``limit_s`` with no ``seen()``; watching is ``watch()``."""

    def __init__(
        self,
        killswitch: KillSwitch,
        limit_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._killswitch = killswitch
        self.limit_s = limit_s
        self._clock = clock
        self._last = clock()

    def seen(self) -> None:
        """A client proved it is there."""
        self._last = self._clock()

    @property
    def silent_s(self) -> float:
        return self._clock() - self._last

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.limit_s / 4))
            if self.silent_s > self.limit_s and not self._killswitch.halted:
                self._killswitch.halt(
                    f"DEAD_MAN: no authenticated request from any client for {self.limit_s:g} s"
                )
