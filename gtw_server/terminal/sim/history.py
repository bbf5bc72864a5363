"""Price history for ``copy_rates_*`` and ``copy_ticks_*``, as the package returns it: numpy
structured arrays, read from each symbol's ``Tape`` up to the terminal's time.

Bars of every timeframe are aggregated from the one stream: the minute timeframes (M1 to M30)
from minute bars, the others (H1 to MN1) from hour bars, and the bar in progress from the
ticks so far, as a terminal builds it: open is the first bid of the period, high and low the
extremes, close the last bid, ``tick_volume`` the ticks, ``spread`` the narrowest. A period
with no tick has no bar (a closed market). Weekly bars start on Sunday, monthly bars on the
first of the month, each at the server's midnight (``ServerClock``: the tapes run on UTC,
the bars and ticks given are on the server's clock). A chart keeps the terminal's ``maxbars``
newest bars, however far back they go; ticks go back to the tape's start.

dtypes are those of the package (docs/MT5_API.md section 1), packed, 60 bytes an element.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from gtw_server.terminal.sim.tape import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    TICK,
    Tape,
    aggregate,
    between,
    concat_bars,
)
from protocol import mt5_constants as c
from protocol.server_time import ServerClock

__all__ = [
    "MAX_BARS",
    "MAX_TICKS",
    "MONTH",
    "RATES_DTYPE",
    "TICKS_DTYPE",
    "PriceHistory",
    "longest_ms",
    "reach_ms",
    "timeframe_ms",
]

MAX_BARS: Final = 100_000  # TerminalInfo.maxbars by default
MAX_TICKS: Final = 100_000  # the most ticks one copy_ticks_range call returns
MONTH: Final = -1  # timeframe_ms of MN1: calendar months have no fixed length
RATES_DTYPE: Final = [
    ("time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("tick_volume", "<u8"),
    ("spread", "<i4"),
    ("real_volume", "<u8"),
]
TICKS_DTYPE: Final = [
    ("time", "<i8"),
    ("bid", "<f8"),
    ("ask", "<f8"),
    ("last", "<f8"),
    ("volume", "<u8"),
    ("time_msc", "<i8"),
    ("flags", "<u4"),
    ("volume_real", "<f8"),
]
_MINUTES: Final = 0x4000  # TIMEFRAME_H* = 0x4000 | hours, W1 = 0x8000 | 1, MN1 = 0xC000 | 1
_WEEK_ORIGIN_MS: Final = 3 * DAY_MS  # weekly bars start on Sunday, as the epoch's was 3 days on
_TICKS_CHUNK: Final = 1440  # minutes read at a time while collecting ticks
_DEEPEST: Final = 16  # how many times maxbars periods back a chart's bars are looked for

_MINUTE_FRAMES: Final = frozenset(
    {
        c.TIMEFRAME_M1,
        c.TIMEFRAME_M2,
        c.TIMEFRAME_M3,
        c.TIMEFRAME_M4,
        c.TIMEFRAME_M5,
        c.TIMEFRAME_M6,
        c.TIMEFRAME_M10,
        c.TIMEFRAME_M12,
        c.TIMEFRAME_M15,
        c.TIMEFRAME_M20,
        c.TIMEFRAME_M30,
    }
)
_HOUR_FRAMES: Final = frozenset(
    {
        c.TIMEFRAME_H1,
        c.TIMEFRAME_H2,
        c.TIMEFRAME_H3,
        c.TIMEFRAME_H4,
        c.TIMEFRAME_H6,
        c.TIMEFRAME_H8,
        c.TIMEFRAME_H12,
        c.TIMEFRAME_D1,
    }
)


def timeframe_ms(timeframe: object) -> int | None:
    """A ``TIMEFRAME_*`` constant's length in ms (``MONTH`` for MN1), or None for anything
    else."""
    if not isinstance(timeframe, int):
        return None
    if timeframe in _MINUTE_FRAMES:
        return timeframe * MINUTE_MS
    if timeframe in _HOUR_FRAMES:
        return (timeframe - _MINUTES) * HOUR_MS
    if timeframe == c.TIMEFRAME_W1:
        return 7 * DAY_MS
    if timeframe == c.TIMEFRAME_MN1:
        return MONTH
    return None


def longest_ms(length_ms: int) -> int:
    """The longest a period of ``length_ms`` (or ``MONTH``: 31 days) can be."""
    return 31 * DAY_MS if length_ms == MONTH else length_ms


def reach_ms(count: int, length_ms: int) -> int:
    """How far back ``count`` bars are looked for first: their periods and a little more, at
    least a week (markets close for the weekend); ``PriceHistory.newest`` goes further when
    closed markets leave them fewer."""
    return max(count * longest_ms(length_ms) * 65 // 64, 7 * DAY_MS)


class PriceHistory:
    """The bars and ticks of every symbol's tape, up to a given time, on ``server``'s clock
    (UTC by default)."""

    def __init__(
        self,
        tapes: Mapping[str, Tape],
        *,
        max_bars: int = MAX_BARS,
        server: ServerClock | None = None,
    ) -> None:
        self._tapes = tapes
        self._max_bars = max_bars
        self._server = server or ServerClock("UTC")

    def bars(self, symbol: str, length_ms: int, oldest_ms: int, now_ms: int) -> Any:
        """The ``BAR`` rows of the periods of ``length_ms`` (or ``MONTH``) that start at
        ``oldest_ms`` or later, up to the one in progress at ``now_ms`` (both UTC), oldest
        first, timed by the server's clock: the newest ``max_bars`` of them at most."""
        depth_ms = self._max_bars * longest_ms(length_ms)
        if oldest_ms >= now_ms - depth_ms:  # within max_bars periods: as many bars at most
            return self._bars(symbol, length_ms, oldest_ms, now_ms)[-self._max_bars :]
        first_ms = reach_ms(self._max_bars, length_ms)
        return self.newest(symbol, length_ms, now_ms, self._max_bars, first_ms, oldest_ms=oldest_ms)

    def newest(
        self,
        symbol: str,
        length_ms: int,
        now_ms: int,
        want: int,
        span_ms: int,
        *,
        oldest_ms: int = 0,
        before_ms: int | None = None,
    ) -> Any:
        """``bars`` up to ``now_ms``, from ``span_ms`` back, or from further back while fewer
        than ``want`` of them start at or before ``before_ms`` (the server's clock; ``None``:
        any): the newest ``max_bars`` at most, none before ``oldest_ms``.

        The terminal keeps ``max_bars`` bars of a chart, not a span of time: closed markets,
        and a minute whose first tick has not come yet, take them further back. The window
        grows as the bars found so far say, up to ``_DEEPEST`` times ``max_bars`` periods."""
        limit = self._max_bars
        deepest_ms = _DEEPEST * limit * longest_ms(length_ms)
        while True:
            start_ms = max(oldest_ms, now_ms - span_ms)
            rows = self._bars(symbol, length_ms, start_ms, now_ms)[-limit:]
            found = len(rows) if before_ms is None else np.count_nonzero(rows["time"] <= before_ms)
            if found >= want or len(rows) == limit or start_ms == oldest_ms:
                return rows
            if span_ms >= deepest_ms:  # a history that far back is as good as none
                return rows
            span_ms = min(deepest_ms, span_ms * 4, span_ms * want // max(int(found), 1) * 9 // 8)

    def _bars(self, symbol: str, length_ms: int, oldest_ms: int, now_ms: int) -> Any:
        """``bars`` from ``oldest_ms`` on, however many."""
        tape = self._tapes[symbol]
        minute = now_ms // MINUTE_MS
        forming = tape.ticks_of(minute)
        forming = forming[forming["time"] <= now_ms]
        if MONTH < length_ms < HOUR_MS:
            source = tape.minutes(oldest_ms // MINUTE_MS, minute - 1)
            parts = [source, aggregate(forming, np.array([minute * MINUTE_MS]))]
        else:
            hour = now_ms // HOUR_MS
            minutes = tape.minutes(hour * 60, minute - 1)
            this_hour = concat_bars([minutes, aggregate(forming, [minute * MINUTE_MS])])
            source = tape.hours(oldest_ms // HOUR_MS, hour - 1)
            parts = [source, aggregate(this_hour, np.array([hour * HOUR_MS]))]
        rows, server = concat_bars(parts), self._server
        if length_ms in (MINUTE_MS, HOUR_MS):  # the source's own periods: whole hours apart
            return self._on_server(between(rows, oldest_ms, now_ms))
        rows = self._on_server(rows)
        starts = _period_starts(rows["time"], length_ms)
        keep = starts >= server.to_server_ms(oldest_ms)  # one that began before is only partly here
        return aggregate(rows[keep], starts[keep])

    def _on_server(self, rows: Any) -> Any:
        """``BAR`` rows (minutes or hours, UTC, a fresh array or a view of one) timed on the
        server's clock (zones of whole hours keep their boundaries), in place."""
        if self._server.is_utc or not len(rows):
            return rows
        rows["time"] = self._server.to_server_ms(rows["time"])
        while len(drops := np.flatnonzero(np.diff(rows["time"]) <= 0)):
            # An hour the clock went back over: its two UTC hours are one on the server's
            # clock, each of its periods one bar with the ticks of both, in their order. Only
            # the overlap is sorted: the rest is in order on both sides of it.
            times, back = rows["time"], int(drops[0]) + 1
            first = int(np.searchsorted(times[:back], times[back]))
            last = back + int(np.searchsorted(times[back:], times[back - 1], side="right"))
            overlap = rows[first:last][np.argsort(times[first:last], kind="stable")]
            merged = aggregate(overlap, overlap["time"])
            rows = concat_bars([rows[:first], merged, rows[last:]])
        return rows

    def rates(self, symbol: str, bars: Any) -> Any:
        """``bars`` (``BAR`` rows of ``symbol``) as the package's ``copy_rates_*`` array."""
        spec = self._tapes[symbol].spec
        out = np.zeros(len(bars), dtype=RATES_DTYPE)
        out["time"] = bars["time"] // 1000
        scale = 10.0**spec.digits  # points / scale: the nearest double to the price
        for field in ("open", "high", "low", "close"):
            out[field] = bars[field] / scale
        out["tick_volume"] = bars["ticks"]
        out["spread"] = bars["spread"]
        return out

    def ticks(self, symbol: str, date_from_ms: int, date_to_ms: int, count: int) -> Any:
        """The package's ``copy_ticks_*`` array of the ticks from ``date_from_ms`` to
        ``date_to_ms`` (both included), at most ``count``."""
        tape = self._tapes[symbol]
        parts: list[Any] = []
        found = 0
        first = date_from_ms // MINUTE_MS
        last = date_to_ms // MINUTE_MS
        while first <= last and found < count:
            chunk_end = min(last, first + _TICKS_CHUNK - 1)
            for bar in tape.minutes(first, chunk_end):
                ticks = tape.ticks_of(int(bar["time"]) // MINUTE_MS)
                ticks = ticks[(ticks["time"] >= date_from_ms) & (ticks["time"] <= date_to_ms)]
                parts.append(ticks[: count - found])
                found += len(parts[-1])
                if found >= count:
                    break
            first = chunk_end + 1
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=TICK)
        out = _package_ticks(tape, rows)
        out["time_msc"] = self._server.to_server_ms(out["time_msc"])
        out["time"] = out["time_msc"] // 1000
        return out


def _period_starts(times_ms: Any, length_ms: int) -> Any:
    """The start of the period of ``length_ms`` (or ``MONTH``) each time falls in."""
    if length_ms == MONTH:
        months = times_ms.astype("datetime64[ms]").astype("datetime64[M]")
        return months.astype("datetime64[ms]").astype(np.int64)
    origin = _WEEK_ORIGIN_MS if length_ms == 7 * DAY_MS else 0
    return times_ms - (times_ms - origin) % length_ms


def _package_ticks(tape: Tape, rows: Any) -> Any:
    """``TICK`` rows as the package's ticks: prices, and flags for what changed."""
    spec = tape.spec
    out = np.zeros(len(rows), dtype=TICKS_DTYPE)
    out["time_msc"] = rows["time"]
    out["time"] = rows["time"] // 1000
    scale = 10.0**spec.digits
    ask = rows["bid"] + rows["spread"]
    out["bid"] = rows["bid"] / scale
    out["ask"] = ask / scale
    bid_moved = np.concatenate(([True], rows["bid"][1:] != rows["bid"][:-1]))
    ask_moved = np.concatenate(([True], ask[1:] != ask[:-1]))
    flags = np.where(bid_moved, c.TICK_FLAG_BID, 0) | np.where(ask_moved, c.TICK_FLAG_ASK, 0)
    out["flags"] = np.where(flags == 0, c.TICK_FLAG_BID | c.TICK_FLAG_ASK, flags)
    return out
