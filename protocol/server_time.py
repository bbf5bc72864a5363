"""The trade server's clock: the time zone a broker keeps its times in.

MetaTrader 5 gives every time in the trade server's zone, not UTC (a tick's, a bar's, a
deal's, an order's expiration), and reads the dates it is given in that zone too. Brokers
commonly run on UTC+2 in winter and UTC+3 in summer, so that the week's last bar closes at
New York's 17:00. The simulator keeps its own time in UTC and converts at its surface, through
a ``ServerClock`` of the zone ``[sim] server_timezone`` names.

Conversions are arithmetic on a table of the zone's offsets (its transitions from 1970 to
2100), so a column of a million times converts in one vectorized step. A server time that
falls in the hour a daylight-saving change skips maps to the time after it; one of the hour
a change repeats, to its second occurrence. The table is made once per zone and process
(a quarter of a second).

>>> clock = ServerClock("EET")
>>> clock.to_server_ms(1_767_225_600_000)  # 2026-01-01 00:00 UTC is 02:00 in Athens (UTC+2)
1767232800000
>>> clock.to_utc_ms(1_767_232_800_000)
1767225600000
>>> clock.offset_s(1_782_864_000)  # 2026-07-01: summer time, UTC+3
10800
>>> describe_offset(7200), describe_offset(-12600), describe_offset(0)
('UTC+2', 'UTC-3:30', 'UTC')
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from protocol.mt5_structs import StructSequence, replaced

__all__ = ["TIME_FIELDS", "ServerClock", "describe_offset", "zone_problem"]

S = TypeVar("S", bound=StructSequence)

# The time fields of the package's structures, each seconds or (``_msc``) milliseconds; 0 is
# "none" (a GTC order's ``time_expiration``, an active order's ``time_done``) and stays 0.
TIME_FIELDS: Final = frozenset(
    {
        "time",
        "time_msc",
        "time_setup",
        "time_setup_msc",
        "time_done",
        "time_done_msc",
        "time_expiration",
        "time_update",
        "time_update_msc",
        "start_time",  # SymbolInfo: a future's first and last trading day
        "expiration_time",
    }
)
_FIRST_YEAR: Final = 1970
_EARLIEST_S: Final = -(2**62)  # the first offset holds before everything in its table
_LAST_YEAR: Final = 2100
_DAY_S: Final = 86_400
_HOUR_S: Final = 3600


def zone_problem(name: str, *, whole_hours: bool = True) -> str | None:
    """Why ``name`` cannot be a trade server's zone, or ``None``: it must be an IANA name the
    system knows, whose offsets are whole hours when ``whole_hours`` (the simulator's: its
    bars are built from hours)."""
    try:
        table = _transitions(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone name (e.g. 'EET', 'Europe/Athens', 'UTC')"
    odd = [offset for _, offset in table if whole_hours and offset % _HOUR_S]
    if odd:
        return f"{name!r} has an offset of {odd[0] / _HOUR_S:+g} h: only whole hours are simulated"
    return None


class ServerClock:
    """UTC to the zone ``name``'s time and back, in epoch seconds or milliseconds; or, with
    ``offsets`` (``[(utc_s, offset_s), ...]``, oldest first: offsets learned with when each
    was first seen), by that table, its first offset also before it."""

    def __init__(self, name: str, offsets: Sequence[tuple[int, int]] | None = None) -> None:
        self.name = name
        table = list(offsets or _transitions(name))
        table[0] = (_EARLIEST_S, table[0][1])
        self._starts_s = np.array([start for start, _ in table], dtype=np.int64)
        self._offsets_s = np.array([offset for _, offset in table], dtype=np.int64)
        # Where each offset's span starts on the server's clock: a repeated hour is in both
        # spans, and searching this finds the later; a skipped hour is in neither.
        self._server_starts_s = self._starts_s + self._offsets_s
        self.is_utc = not self._offsets_s.any()

    def offset_s(self, utc_s: float) -> int:
        """The zone's offset from UTC at ``utc_s``, in seconds (7200 for UTC+2)."""
        index = int(np.searchsorted(self._starts_s, utc_s, side="right")) - 1
        return int(self._offsets_s[max(index, 0)])

    @overload
    def to_server_ms(self, utc_ms: int) -> int: ...
    @overload
    def to_server_ms(self, utc_ms: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]: ...
    def to_server_ms(self, utc_ms: Any) -> Any:
        """UTC epoch ms (an int or an array) as the server's."""
        if self.is_utc:
            return utc_ms
        index = np.searchsorted(self._starts_s, np.floor_divide(utc_ms, 1000), side="right") - 1
        shifted = utc_ms + self._offsets_s[np.maximum(index, 0)] * 1000
        return int(shifted) if isinstance(utc_ms, int) else shifted

    @overload
    def to_utc_ms(self, server_ms: int) -> int: ...
    @overload
    def to_utc_ms(self, server_ms: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]: ...
    def to_utc_ms(self, server_ms: Any) -> Any:
        """The server's epoch ms (an int or an array) as UTC."""
        if self.is_utc:
            return server_ms
        seconds = np.floor_divide(server_ms, 1000)
        index = np.searchsorted(self._server_starts_s, seconds, side="right") - 1
        index = np.maximum(index, 0)
        # A skipped hour: still before its span's start in UTC, so the span before applies.
        earlier = np.maximum(index - 1, 0)
        skipped = seconds - self._offsets_s[index] < self._starts_s[index]
        offsets = np.where(skipped, self._offsets_s[earlier], self._offsets_s[index])
        utc = server_ms - offsets * 1000
        return int(utc) if isinstance(server_ms, int) else utc

    def on_server(self, record: S) -> S:
        """``record`` (a ``Tick``, ``SymbolInfo``, ``TradePosition``, ``TradeOrder`` or
        ``TradeDeal``) with its times on the server's clock."""
        if self.is_utc:
            return record
        return replaced(record, **self.moved(record._asdict(), to_server=True))

    def moved(self, fields: Mapping[str, Any], *, to_server: bool) -> dict[str, int]:
        """The time fields among ``fields`` (a record's, by name) on the server's clock, or
        (``to_server`` false) back in UTC; seconds stay seconds, ``_msc`` milliseconds."""
        convert = self.to_server_ms if to_server else self.to_utc_ms
        changes = {}
        for name, value in fields.items():
            if name in TIME_FIELDS and value:
                milliseconds = name.endswith("_msc")
                ms = convert(int(value) if milliseconds else int(value) * 1000)
                changes[name] = ms if milliseconds else ms // 1000
        return changes

    def to_server_s(self, utc_s: int) -> int:
        return self.to_server_ms(utc_s * 1000) // 1000

    def to_utc_s(self, server_s: int) -> int:
        return self.to_utc_ms(server_s * 1000) // 1000


@functools.cache
def _transitions(name: str) -> list[tuple[int, int]]:
    """``(utc_s, offset_s)`` from each change of the zone's offset on, oldest first, from
    1970 to 2100: found day by day, then to the second by halving."""
    zone = ZoneInfo(name)

    def offset(utc_s: int) -> int:
        moment = dt.datetime.fromtimestamp(utc_s, dt.UTC).astimezone(zone)
        delta = moment.utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start = int(dt.datetime(_FIRST_YEAR, 1, 1, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(_LAST_YEAR, 1, 1, tzinfo=dt.UTC).timestamp())
    table = [(start, offset(start))]
    day, last = start, table[0][1]
    while day < end:
        following = offset(day + _DAY_S)
        if following != last:
            low, high = day, day + _DAY_S  # offset(low) == last, offset(high) == following
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == last else (low, middle)
            table.append((high, following))
            last = following
        day += _DAY_S
    return table


def describe_offset(offset_s: int) -> str:
    """An offset from UTC (seconds) as people write it: ``UTC+2``, ``UTC-3:30``, ``UTC``."""
    if not offset_s:
        return "UTC"
    sign = "+" if offset_s > 0 else "-"
    hours, seconds = divmod(abs(offset_s), 3600)
    return f"UTC{sign}{hours}" + (f":{seconds // 60:02d}" if seconds else "")
