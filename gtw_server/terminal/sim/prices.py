"""The live quotes: each symbol's last tick of its ``Tape`` at the feed's time, and scans of the
ticks in between for what they trigger.

A quote is never made here: it is a tick of the symbol's one stream, so the live bid is a tick
``copy_ticks_*`` returns and lies inside the M1 bar ``copy_rates_*`` shows for its minute.
Outside a symbol's trading sessions its quote is the last tick before the close.

The broker *scans* the ticks a symbol went through since it was last looked at
(``PriceFeed.scan``), for the first that triggers a pending order, a stop loss or a take
profit, so they fire at the tick that reached them, not wherever the next read lands. A scan
looks at bars before ticks: an hour, then a minute, whose range cannot reach any threshold is
skipped whole, so a terminal stopped for a week catches up in a few milliseconds. How far each
symbol was gone through is what the state file keeps (``unsaved``), so a restarted terminal
executes what the prices triggered while it was down.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from gtw_server.terminal.sim.tape import HOUR_MS, MINUTE_MS, Tape

if TYPE_CHECKING:  # triggers reads Quote from here
    from gtw_server.terminal.sim.triggers import Watch

__all__ = ["PriceFeed", "Quote", "Scan"]


class Quote(NamedTuple):
    """A symbol's prices at one tick."""

    bid: float
    ask: float
    spread: int  # in points
    time_msc: int


class Scan(NamedTuple):
    """Where a scan of the ticks stopped: at the first quote that fired, or at the end (no
    quote: nothing fired)."""

    time_ms: int
    quote: Quote | None = None


class _Minute(NamedTuple):
    """One minute's ticks as quotes, for bisecting by time."""

    minute: int
    times: list[int]
    quotes: list[Quote]


class PriceFeed:
    """The quotes of every symbol at the feed's time (``at``).

    ``stored`` maps a symbol to the time its ticks were gone through up to when last
    persisted; a symbol without one starts at ``now_ms``.
    """

    def __init__(
        self, tapes: Mapping[str, Tape], *, now_ms: int, stored: Mapping[str, int]
    ) -> None:
        self._tapes = tapes
        self._now_ms = now_ms
        self._seen = {name: stored.get(name, now_ms) for name in tapes}
        self._saved = dict(stored)
        self._minutes: dict[str, _Minute] = {}

    def at(self, now_ms: int) -> None:
        """Sets the feed's time."""
        self._now_ms = now_ms

    def _minute(self, symbol: str, minute: int) -> _Minute:
        cached = self._minutes.get(symbol)
        if cached is None or cached.minute != minute:
            tape = self._tapes[symbol]
            cached = _Minute(minute, *_quotes(tape, tape.ticks_of(minute)))
            self._minutes[symbol] = cached
        return cached

    def _last(self, symbol: str, at_ms: int) -> Quote:
        """The last tick of ``symbol`` at or before ``at_ms``."""
        tape = self._tapes[symbol]
        for _ in range(8):  # a trading minute has ticks: this is one or two turns
            at_ms = tape.last_trading_ms(at_ms)
            minute = self._minute(symbol, at_ms // MINUTE_MS)
            index = bisect_right(minute.times, at_ms) - 1
            if index >= 0:
                return minute.quotes[index]
            at_ms = minute.minute * MINUTE_MS - 1
        raise LookupError(f"{symbol} has no tick before {at_ms} ms")

    def quote(self, symbol: str) -> Quote:
        """The symbol's last tick at the feed's time. Looking at it goes through its ticks
        up to there: the broker scans what could fire before it quotes."""
        quote = self._last(symbol, self._now_ms)
        self._seen[symbol] = max(self._seen[symbol], self._now_ms)
        return quote

    def scan(self, symbol: str, until_ms: int, thresholds: Watch) -> Scan:
        """``symbol``'s ticks after where it was last gone through, up to ``until_ms``, as far
        as the first whose quote ``thresholds`` fires at; nothing moves (``move``)."""
        start, end = self._seen[symbol] + 1, until_ms
        for minute in _candidates(self._tapes[symbol], start, end, thresholds):
            ticks = self._minute(symbol, minute)
            for time_ms, quote in zip(ticks.times, ticks.quotes, strict=True):
                if start <= time_ms <= end and thresholds.fires(quote):
                    return Scan(time_ms, quote)
        return Scan(max(end, self._seen[symbol]))

    def move(self, symbol: str, scan: Scan) -> None:
        """Notes that ``symbol``'s ticks were gone through up to where ``scan`` stopped."""
        self._seen[symbol] = max(self._seen[symbol], scan.time_ms)

    def unsaved(self) -> list[tuple[str, int]]:
        """``(symbol, time_ms)`` of every symbol gone further since ``saved``, as ``stored``
        takes them back. An order usually moves one symbol: writing the others every time
        was most of a commit."""
        saved = self._saved
        return [(name, seen) for name, seen in self._seen.items() if saved.get(name) != seen]

    def saved(self, rows: Iterable[tuple[str, int]]) -> None:
        """Notes that ``rows`` (from ``unsaved``) were persisted."""
        self._saved.update(rows)


def _quotes(tape: Tape, ticks: Any) -> tuple[list[int], list[Quote]]:
    scale = 10.0**tape.spec.digits  # points / scale: the nearest double to the price
    times = ticks["time"].tolist()
    quotes = [
        Quote(bid / scale, (bid + spread) / scale, spread, time)
        for time, bid, spread in zip(
            times, ticks["bid"].tolist(), ticks["spread"].tolist(), strict=True
        )
    ]
    return times, quotes


def _candidates(tape: Tape, start: int, end: int, thresholds: Watch) -> Iterator[int]:
    """The minutes from ``start`` to ``end`` (ms) whose ticks could fire, in order: within
    one minute (most scans) that minute; else those of the hours whose bars could."""
    if start > end:
        return
    if start // MINUTE_MS == end // MINUTE_MS:
        yield start // MINUTE_MS
        return
    cap = tape.spread_cap() * tape.spec.point
    for hour in tape.hours(start // HOUR_MS, end // HOUR_MS):
        if _may_fire(tape, hour, cap, thresholds):
            first = max(start, int(hour["time"])) // MINUTE_MS
            last = min(end, int(hour["time"]) + HOUR_MS - 1) // MINUTE_MS
            for bar in tape.minutes(first, last):
                if _may_fire(tape, bar, cap, thresholds):
                    yield int(bar["time"]) // MINUTE_MS


def _may_fire(tape: Tape, bar: Any, cap: float, thresholds: Watch) -> bool:
    """Whether a tick of ``bar`` could fire: its bid range, its ask range up to the widest
    spread, half a point wider for rounding."""
    point = tape.spec.point
    low, high = int(bar["low"]) * point - point / 2, int(bar["high"]) * point + point / 2
    return thresholds.reaches(
        bid_low=low, bid_high=high, ask_low=low + int(bar["spread"]) * point, ask_high=high + cap
    )
