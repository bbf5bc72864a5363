"""Market data in terms of the ``MetaTrader5`` API: what the worker runs for the market-data
requests (GET_SYMBOLS, GET_SYMBOL, GET_TICK, GET_RATES, GET_TICKS) and for the event feed's
polls.

``MarketReader`` runs in the terminal worker beside ``TerminalAdapter``, whose connection and
symbol selection it shares: a symbol outside the Market Watch is selected first, as for orders.
Bars and ticks leave it as the bytes of the package's numpy arrays (``Table``), in the wire's
dtypes, so that 100,000 bars cross the pipe and the socket as one 6 MB buffer, not 100,000
objects.

A poll (``Poll``) asks, for every subscribed symbol, the ticks after the last one published
(``copy_ticks_from`` since its ``time_msc``: none is missed where the terminal keeps tick
history; else the latest quote when it changed), and for every subscribed bar, the bars closed
since the last one published.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np
from msgspec import Struct

from gtw_server.adapter import TerminalAdapter
from gtw_server.errors import TerminalRefused
from gtw_server.symbol_names import AmbiguousSymbol
from protocol import RATES_DTYPE, TICKS_DTYPE, Bar, ErrorCode, SymbolInfo, Tick, Timeframe

__all__ = [
    "BarCursor",
    "MarketReader",
    "Poll",
    "Polled",
    "RatesQuery",
    "Table",
    "TickCursor",
    "TicksQuery",
    "bars_due",
    "ticks_due",
]

_RATES: Final = np.dtype(RATES_DTYPE)
_TICKS: Final = np.dtype(TICKS_DTYPE)
# The package's fields (a tick's, a rates row's), before the wire's own (symbol, timeframe)
# and the client's (server_offset_s).
_TICK_FIELDS: Final = Tick.__struct_fields__[: Tick.__struct_fields__.index("symbol")]
_BAR_FIELDS: Final = Bar.__struct_fields__[: Bar.__struct_fields__.index("symbol")]
_TIMEFRAMES: Final = {frame.constant: frame.value for frame in Timeframe}
_TICKS_PER_POLL: Final = 5000  # a poll that fell behind catches up over the next ones
_BARS_PER_POLL: Final = 10  # closed bars looked at per poll: more than close between two


class RatesQuery(Struct, frozen=True, kw_only=True):
    """GET_RATES for the worker: ``timeframe`` is the ``TIMEFRAME_*`` value; the form is
    the one ``GetRates.problem`` accepted (``count`` from ``start_pos``, ``date_from`` and
    ``count``, or ``date_from`` to ``date_to``)."""

    symbol: str
    timeframe: int
    max_rows: int
    count: int | None = None
    start_pos: int = 0
    date_from: int | None = None
    date_to: int | None = None


class TicksQuery(Struct, frozen=True, kw_only=True):
    """GET_TICKS for the worker: ``flags`` is the ``COPY_TICKS_*`` name (ALL, INFO, TRADE)."""

    symbol: str
    date_from: int
    flags: str
    max_rows: int
    count: int | None = None
    date_to: int | None = None


class Table(Struct, frozen=True, array_like=True):
    """``rows`` rows of a wire dtype (``protocol.RATES_DTYPE`` or ``TICKS_DTYPE``), packed."""

    rows: int
    data: bytes


class TickCursor(Struct, frozen=True, array_like=True):
    """Where a symbol's tick stream is: the ``time_msc`` of the last tick published, and how
    many ticks with that very ``time_msc`` were (several may share a millisecond). ``0, 0``:
    not started (the next poll publishes the latest quote)."""

    after_msc: int = 0
    seen: int = 0


class BarCursor(Struct, frozen=True, array_like=True):
    """Where a bar stream is: the open time of the last closed bar published (0: not started;
    the next poll only notes the last closed bar)."""

    symbol: str
    timeframe: int
    after: int = 0


class Poll(Struct, frozen=True, kw_only=True):
    """What the feed wants: ticks after each cursor, bars after each cursor."""

    ticks: dict[str, TickCursor] = msgspec.field(default_factory=dict)
    bars: list[BarCursor] = msgspec.field(default_factory=list)


class Polled(Struct, frozen=True, kw_only=True):
    """New ticks by symbol with the cursors that follow them; closed bars by cursor (the
    cursor returned is the new one); the symbols that could not be read: the refusal's code
    (``SYMBOL_NOT_FOUND``, ``SYMBOL_AMBIGUOUS``) and why."""

    ticks: dict[str, list[Tick]]
    cursors: dict[str, TickCursor]
    bars: list[tuple[BarCursor, list[Bar]]]
    failed: dict[str, tuple[ErrorCode, str]]


class MarketReader:
    """The market-data reads, over the adapter's terminal connection."""

    def __init__(self, adapter: TerminalAdapter) -> None:
        self._adapter = adapter
        self.mt5 = adapter.mt5

    # -- requests -----------------------------------------------------------------------------

    def symbols(self, group: str | None) -> list[SymbolInfo]:
        self._adapter.ensure_connected()
        found = self.mt5.symbols_get(group=group) if group else self.mt5.symbols_get()
        if found is None:
            raise self._adapter.failed("symbols_get")
        return [_symbol(info) for info in found]

    def symbol(self, symbol: str) -> SymbolInfo:
        return _symbol(self._selected(self._name(symbol)))

    def latest(self, symbols: list[str]) -> dict[str, Tick]:
        """The latest tick of each symbol, by the name asked; each tick names the broker's."""
        self._adapter.ensure_connected()
        names = {symbol: self._name(symbol) for symbol in dict.fromkeys(symbols)}
        return {symbol: _tick(self._latest(name), name) for symbol, name in names.items()}

    def rates(self, query: RatesQuery) -> Table:
        mt5, symbol, frame = self.mt5, self._name(query.symbol), query.timeframe
        self._selected(symbol)
        if query.date_from is None:
            found = mt5.copy_rates_from_pos(symbol, frame, query.start_pos, query.count)
        elif query.date_to is None:
            found = mt5.copy_rates_from(symbol, frame, query.date_from, query.count)
        else:
            found = mt5.copy_rates_range(symbol, frame, query.date_from, query.date_to)
        if found is None:
            raise self._adapter.failed("copy_rates")
        return _table(found, _RATES, query.max_rows)

    def ticks(self, query: TicksQuery) -> Table:
        symbol = self._name(query.symbol)
        self._selected(symbol)
        flags = getattr(self.mt5, f"COPY_TICKS_{query.flags}")
        if query.date_to is None:
            found = self.mt5.copy_ticks_from(symbol, query.date_from, query.count, flags)
        else:
            # A range is read as at most max_rows + 1 ticks from its start, not whole: a month
            # of ticks would hold the worker (and every order behind it) for as long as the
            # terminal takes to copy it, only to be refused. One more than the limit, all in
            # the range, is enough to know it is too large.
            found = self.mt5.copy_ticks_from(symbol, query.date_from, query.max_rows + 1, flags)
            if found is not None:
                found = found[found["time_msc"] < (query.date_to + 1) * 1000]  # date_to's second
        if found is None:
            raise self._adapter.failed("copy_ticks")
        return _table(found, _TICKS, query.max_rows)

    # -- the event feed -------------------------------------------------------------------------

    def poll(self, poll: Poll) -> Polled:
        """Read what is new for every subscription; a symbol that fails is named in
        ``failed`` and the others are still read (a lost terminal raises).

        Each symbol's latest tick is read first, one cheap call: nothing older than it can be
        new, so the tick history (and the bars) are read only when it shows they may be."""
        ticks: dict[str, list[Tick]] = {}
        cursors: dict[str, TickCursor] = {}
        bars: list[tuple[BarCursor, list[Bar]]] = []
        failed: dict[str, tuple[ErrorCode, str]] = {}
        self._adapter.ensure_connected()
        latest: dict[str, Any] = {}
        names: dict[str, str] = {}  # the broker's, by the name subscribed
        for symbol in dict.fromkeys([*poll.ticks, *(cursor.symbol for cursor in poll.bars)]):
            try:
                names[symbol] = self._name(symbol)
                latest[symbol] = self._latest(names[symbol])
            except TerminalRefused as exc:
                failed[symbol] = (ErrorCode(exc.code), str(exc))
        for symbol, cursor in poll.ticks.items():
            if symbol in latest:
                found = self._new_ticks(names[symbol], cursor, latest[symbol])
                ticks[symbol], cursors[symbol] = found
        for bar_cursor in poll.bars:
            if bar_cursor.symbol in latest:
                name = names[bar_cursor.symbol]
                bars.append(self._closed_bars(bar_cursor, latest[bar_cursor.symbol], name))
        return Polled(ticks=ticks, cursors=cursors, bars=bars, failed=failed)

    def _new_ticks(
        self, symbol: str, cursor: TickCursor, latest: Any
    ) -> tuple[list[Tick], TickCursor]:
        if not ticks_due(cursor, latest):
            return [], cursor
        if cursor.after_msc:
            found = self.mt5.copy_ticks_from(
                symbol, cursor.after_msc // 1000, _TICKS_PER_POLL, self.mt5.COPY_TICKS_ALL
            )
            if found is not None:
                return _after(found, cursor, symbol)
        # Not started, or no tick history here: the latest quote.
        return [_tick(latest, symbol)], TickCursor(latest.time_msc, 1)

    def _closed_bars(
        self, cursor: BarCursor, latest: Any, name: str
    ) -> tuple[BarCursor, list[Bar]]:
        """The bars closed since ``cursor`` of the broker's symbol ``name``."""
        if not bars_due(cursor, latest):
            return cursor, []
        found = self.mt5.copy_rates_from_pos(name, cursor.timeframe, 1, _BARS_PER_POLL)
        if found is None:
            raise self._adapter.failed(f"copy_rates_from_pos({name})")
        if not len(found):
            return cursor, []
        last = int(found["time"][-1])
        if not cursor.after:
            return msgspec.structs.replace(cursor, after=last), []
        new = found[found["time"] > cursor.after]
        frame = _TIMEFRAMES[cursor.timeframe]
        closed = [
            Bar(**dict(zip(_BAR_FIELDS, row, strict=True)), symbol=name, timeframe=frame)
            for row in new.tolist()
        ]
        return msgspec.structs.replace(cursor, after=max(last, cursor.after)), closed

    def _latest(self, symbol: str) -> Any:
        """The symbol's latest tick, selecting it in the Market Watch first if it must be;
        ``SYMBOL_NOT_FOUND`` if the terminal does not know it."""
        tick = self.mt5.symbol_info_tick(symbol)
        if tick is None:
            self._selected(symbol)  # not in the Market Watch (-4), or unknown (refused)
            tick = self.mt5.symbol_info_tick(symbol)
            if tick is None:
                raise self._adapter.failed(f"symbol_info_tick({symbol})")
        return tick

    def _name(self, symbol: str) -> str:
        """The broker's name for ``symbol`` (``TerminalAdapter.resolve``); ``SYMBOL_AMBIGUOUS``
        when several symbols are it plus a suffix."""
        self._adapter.ensure_connected()
        try:
            return self._adapter.resolve(symbol)
        except AmbiguousSymbol as exc:
            raise TerminalRefused(ErrorCode.SYMBOL_AMBIGUOUS, str(exc)) from None

    def _selected(self, symbol: str) -> Any:
        """The symbol's info, selected in the Market Watch; ``SYMBOL_NOT_FOUND`` if unknown."""
        self._adapter.ensure_connected()
        info = self._adapter.symbol_info(symbol)
        if info is None:
            raise TerminalRefused(ErrorCode.SYMBOL_NOT_FOUND, self._adapter.unknown_symbol(symbol))
        return info


def ticks_due(cursor: TickCursor, latest: Any) -> bool:
    """Whether the stream at ``cursor`` may have a tick to publish, given the symbol's
    ``latest`` tick: nothing older than it can be new (a tick that shares the cursor's
    millisecond is read with the next newer one)."""
    return not cursor.after_msc or latest.time_msc > cursor.after_msc


def bars_due(cursor: BarCursor, latest: Any) -> bool:
    """Whether a bar may have closed since ``cursor``, given the symbol's ``latest`` tick: the
    bar after the last one published closes no sooner than two bar lengths after that one
    opened (a month: 28 days at least), in the server's clock that the tick's time is."""
    return not cursor.after or latest.time >= cursor.after + 2 * _shortest_bar(cursor.timeframe)


def _shortest_bar(timeframe: int) -> int:
    """The shortest a bar of ``timeframe`` (a ``TIMEFRAME_*`` value) can be, in seconds."""
    kind, length = timeframe & 0xC000, timeframe & 0x3FFF
    if kind == 0:  # minutes
        return 60 * length
    if kind == 0x4000:  # hours (D1 is 24 of them)
        return 3600 * length
    return 7 * 86_400 if kind == 0x8000 else 28 * 86_400  # W1, MN1


def _after(found: Any, cursor: TickCursor, symbol: str) -> tuple[list[Tick], TickCursor]:
    """The ticks of ``found`` (oldest first) that come after ``cursor``, and the new cursor."""
    times = found["time_msc"]
    at_cursor = int((times == cursor.after_msc).sum())
    newer = found[times > cursor.after_msc]
    if at_cursor > cursor.seen:  # more ticks in that millisecond than were published
        newer = np.concatenate([found[times == cursor.after_msc][cursor.seen :], newer])
    if not len(newer):
        return [], cursor
    last = int(newer["time_msc"][-1])
    seen = int((newer["time_msc"] == last).sum())
    if last == cursor.after_msc:
        seen += cursor.seen
    ticks = [
        Tick(**dict(zip(_TICK_FIELDS, row, strict=True)), symbol=symbol) for row in newer.tolist()
    ]
    return ticks, TickCursor(last, seen)


def _table(found: Any, dtype: np.dtype[Any], max_rows: int) -> Table:
    """The array's rows in the wire's dtype, as bytes; ``TOO_LARGE`` past ``max_rows``."""
    if len(found) > max_rows:
        raise TerminalRefused(
            ErrorCode.TOO_LARGE,
            f"{len(found)} rows found, over this gateway's limit of {max_rows} per request "
            "([gateway] max_rows); ask for a shorter range",
        )
    rows = np.asarray(found)
    if rows.dtype != dtype:  # another layout: copy the fields over by name (a missing one: 0)
        copy = np.zeros(len(rows), dtype=dtype)
        for name in set(dtype.names or ()) & set(rows.dtype.names or ()):
            copy[name] = rows[name]
        rows = copy
    return Table(len(rows), np.ascontiguousarray(rows).tobytes())


def _tick(tick: Any, symbol: str) -> Tick:
    return Tick(**{name: getattr(tick, name) for name in _TICK_FIELDS}, symbol=symbol)


def _symbol(info: Any) -> SymbolInfo:
    # Not strict: a build of the package that gives an int where a float is (or a bool as 0/1)
    # must not make every symbol unreadable.
    return msgspec.convert(info._asdict(), SymbolInfo, strict=False)
