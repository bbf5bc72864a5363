"""Log floods cut down to a few lines and a count.

A stranger who sends a hundred thousand unsigned orders must not write a hundred thousand
log and audit lines (33 MB, measured): refusals, dropped replies and the like go through a
``Throttle``, which lets ``burst`` lines of each kind through per ``window_s`` and counts the
rest; ``summaries()``, called once a window, says how many were held back.

>>> clock = iter(range(100)).__next__
>>> throttle = Throttle(burst=2, window_s=10, clock=clock)
>>> [throttle.allow("refusals (SIGNATURE_MISSING)") for _ in range(4)]
[True, True, False, False]
>>> throttle.summaries()
[('refusals (SIGNATURE_MISSING)', 2)]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["Throttle"]


class Throttle:
    """At most ``burst`` lines per ``window_s`` for each key; the rest are counted."""

    def __init__(
        self,
        *,
        burst: int = 20,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._window_started: dict[Hashable, float] = {}
        self._seen: dict[Hashable, int] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> bool:
        """Whether a line of kind ``key`` may be written now (if not, it is counted)."""
        now = self._clock()
        if now - self._window_started.get(key, -self.window_s) >= self.window_s:
            self._window_started[key] = now
            self._seen[key] = 0
        self._seen[key] += 1
        if self._seen[key] <= self.burst:
            return True
        self._held[key] = self._held.get(key, 0) + 1
        return False

    def summaries(self) -> list[tuple[Hashable, int]]:
        """(key, lines held back) since the last call, for each key that had any."""
        held, self._held = self._held, {}
        return sorted(held.items(), key=str)
