"""The recent history in memory: what a terminal is asked for most, answered without SQLite.

A trade watcher asks for the last seconds of deals and orders several times a second
(``history_deals_get(from, to)``, ``history_deals_total``); read from SQLite that costs 3-4 µs a
row, so at a thousand deals a second each look cost the worker ~15 ms, for rows that never
change once written. A real terminal keeps its history in memory. ``RecentRows`` keeps the rows
of one history table dated from ``complete_from`` on, in the table's order (``time_msc``, then
``ticket``), and answers a range that starts there or later with two bisections and a slice.

History rows are only ever inserted, never changed, so nothing here can go stale. A row dated
before ``complete_from`` (the simulator executing, at their old times, what the prices
triggered while it was down) is left to SQLite, and so is every range that starts before it.
Rows more than ``keep_s`` older than the newest are let go, and ``complete_from`` moves up.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Any, Final, Generic, TypeVar

__all__ = ["KEEP_S", "RecentRows"]

S = TypeVar("S")

KEEP_S: Final = 26 * 3600  # a trade watcher's whole-day read, and an hour of slack
_SLACK_S: Final = 3600  # rows are let go an hour's worth at a time, not one by one


class RecentRows(Generic[S]):
    """The rows of one history table dated ``complete_from`` (seconds) or later."""

    def __init__(
        self, time_column: str, msc_column: str, complete_from: int, *, keep_s: int = KEEP_S
    ) -> None:
        self._time = time_column
        self._msc = msc_column
        self.complete_from = complete_from
        self._keep_s = keep_s
        self._keys: list[tuple[int, int]] = []  # (time_msc, ticket) of each row, in order
        self._rows: list[S] = []

    def __len__(self) -> int:
        return len(self._rows)

    def covers(self, date_from: int) -> bool:
        """Whether every row dated ``date_from`` or later is here."""
        return date_from >= self.complete_from

    def add(self, rows: Iterable[S]) -> None:
        """Take rows just written to the table."""
        for row in rows:
            seconds, msc = _int(row, self._time), _int(row, self._msc)
            if seconds < self.complete_from:
                continue  # older than what is complete here: SQLite answers for that time
            if msc // 1000 != seconds:  # not what the simulator writes; never answer wrong
                self._let_go(seconds + 1)
                continue
            key = (msc, _int(row, "ticket"))
            if not self._keys or key > self._keys[-1]:
                self._keys.append(key)
                self._rows.append(row)
            else:
                at = bisect_left(self._keys, key)
                insort(self._keys, key)
                self._rows.insert(at, row)
        if self._keys:
            newest = self._keys[-1][0] // 1000
            if self._keys[0][0] // 1000 < newest - self._keep_s - _SLACK_S:
                self._let_go(newest - self._keep_s)

    def between(self, date_from: int, date_to: int) -> list[S]:
        """The rows dated ``date_from`` to ``date_to`` (seconds, both included), in order;
        only when ``covers(date_from)``."""
        first, last = self._span(date_from, date_to)
        return self._rows[first:last]

    def count(self, date_from: int, date_to: int) -> int:
        """How many rows ``between`` would return."""
        first, last = self._span(date_from, date_to)
        return max(0, last - first)

    def _span(self, date_from: int, date_to: int) -> tuple[int, int]:
        if not self.covers(date_from):
            raise ValueError(f"rows before {self.complete_from} are not kept here")
        first = bisect_left(self._keys, (date_from * 1000, -1))
        last = bisect_left(self._keys, ((date_to + 1) * 1000, -1))
        return first, max(first, last)

    def _let_go(self, before: int) -> None:
        """Drop the rows dated before ``before`` (seconds); nothing before it is complete."""
        if before <= self.complete_from:
            return
        cut = bisect_left(self._keys, (before * 1000, -1))
        del self._keys[:cut], self._rows[:cut]
        self.complete_from = before


def _int(row: Any, field: str) -> int:
    value: int = getattr(row, field)
    return value
