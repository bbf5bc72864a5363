"""Market hours: when each symbol trades, in UTC (the simulated server's time zone).

A symbol's ``hours`` are its weekly trading sessions, ``(start, end)`` in minutes from Sunday
00:00 UTC, end excluded: FX trades 24/5 from Sunday 22:00 to Friday 22:00, gold and the index
CFDs have daily breaks (``symbols`` lists them). Outside its sessions a symbol has no
quotes, so its last quote is the one before the close, nothing triggers, and every trade
request for it is refused with 10018; the price walk goes on meanwhile, so the market reopens
with a gap, as after a real weekend.

>>> from gtw_server.terminal.sim.symbols import SYMBOLS
>>> sessions = Sessions(always_open=False)
>>> saturday_noon = 1_700_913_600_000  # 2023-11-25 12:00 UTC
>>> sessions.is_open(SYMBOLS["EURUSD"], saturday_noon)
False
>>> sessions.last_open_ms(SYMBOLS["EURUSD"], saturday_noon)  # Friday 21:59:59.999
1700863199999
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # symbols builds its sessions with weekly()
    from gtw_server.terminal.sim.symbols import SymbolSpec

__all__ = ["WEEK_MINUTES", "Sessions", "weekly"]

WEEK_MINUTES: Final = 7 * 24 * 60
_MINUTE_MS: Final = 60_000
_WEEK_MS: Final = WEEK_MINUTES * _MINUTE_MS
_SUNDAY_MS: Final = 3 * 86_400_000  # the epoch was a Thursday; the first Sunday was 3 days on


def weekly(*sessions: tuple[str, str]) -> tuple[tuple[int, int], ...]:
    """Sessions from ``("Sun 22:00", "Fri 22:00")`` pairs, as minutes from Sunday 00:00.

    >>> weekly(("Mon 07:00", "Mon 21:00"))
    ((1860, 2700),)
    """
    days = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")

    def minutes(text: str) -> int:
        day, clock = text.split()
        hours, mins = clock.split(":")
        return days.index(day) * 1440 + int(hours) * 60 + int(mins)

    return tuple((minutes(start), minutes(end)) for start, end in sessions)


class Sessions:
    """Which symbols trade when; ``always_open`` opens every market all the time (tests)."""

    def __init__(self, *, always_open: bool) -> None:
        self.always_open = always_open

    def is_open(self, spec: SymbolSpec, now_ms: int) -> bool:
        return self.last_open_ms(spec, now_ms) == now_ms

    def last_open_ms(self, spec: SymbolSpec, now_ms: int) -> int:
        """``now_ms`` if the market is open, else the last millisecond it was."""
        if self.always_open:
            return now_ms
        week_start = now_ms - (now_ms - _SUNDAY_MS) % _WEEK_MS
        minute = (now_ms - week_start) / _MINUTE_MS
        return _last_open(spec.hours, minute, week_start, now_ms)


def _last_open(
    hours: Sequence[tuple[int, int]], minute: float, week_start: int, now_ms: int
) -> int:
    index = bisect_right(hours, (minute, WEEK_MINUTES)) - 1  # the last session started by now
    if index >= 0:
        end = hours[index][1]
        if minute < end:
            return now_ms
        return week_start + end * _MINUTE_MS - 1
    return week_start - _WEEK_MS + hours[-1][1] * _MINUTE_MS - 1  # last week's last session
