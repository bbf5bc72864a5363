"""``SimTerminal``: a simulated MetaTrader 5 terminal with the ``MetaTrader5`` module's surface.

Code written for the real package runs on it unchanged: its functions are methods with the same
call conventions (docs/MT5_API.md section 1), its constants are attributes, results are the same
struct sequences, and ``last_error()`` behaves the same way, quirks included::

    >>> mt5 = SimTerminal(clock=lambda: 1_700_000_000.0)  # an in-memory USD demo account
    >>> mt5.account_info() is None, mt5.last_error()      # initialize() comes first
    (True, (-10004, 'No IPC connection'))
    >>> mt5.initialize()
    True
    >>> tick = mt5.symbol_info_tick("EURUSD")
    >>> result = mt5.order_send({
    ...     "action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1,
    ...     "type": mt5.ORDER_TYPE_BUY, "price": tick.ask, "deviation": 10,
    ... })
    >>> result.retcode == mt5.TRADE_RETCODE_DONE, result.comment
    (True, 'Request executed')
    >>> [position.ticket for position in mt5.positions_get()] == [result.order]
    True
    >>> mt5.shutdown()
    True

This layer is the *binding*: connection state, ``last_error``, argument checks, the Market
Watch selection and book subscriptions, request ids, and the terminal-side refusals (Algo
Trading off, the Python API disabled). The trade server and account behind it are ``Broker``
(``broker``), persisted by ``Store`` (``store``); prices come from ``prices``, the
overnight swaps from ``swaps``, the history of ``copy_*`` from ``history``, the depth
of market from ``book``, the fault switches from ``faults``, and
``Buy``/``Sell``/``Close`` from ``helpers``.

Calls are serialised by a lock, as the real binary serialises them by never releasing the GIL.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Final, Literal, ParamSpec, TypeVar

import msgspec

from gtw_server.terminal.sim.args import (
    MAX_GROUP,
    MAX_SYMBOL,
    CallFailed,
    invalid,
    parse_date,
    parse_request,
    positional,
    utf16_len,
)
from gtw_server.terminal.sim.book import book
from gtw_server.terminal.sim.broker import Broker
from gtw_server.terminal.sim.config import SimConfig
from gtw_server.terminal.sim.faults import Faults, hang_forever
from gtw_server.terminal.sim.history import MAX_TICKS, PriceHistory, reach_ms, timeframe_ms
from gtw_server.terminal.sim.replay import (
    ReplayError,
    ReplayTape,
    read_export,
    replay_clock,
    replayed_spec,
)
from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.store import HISTORY_DEALS, HISTORY_ORDERS, History, Store
from gtw_server.terminal.sim.symbols import SYMBOLS, SymbolSpec, group_filter, symbol_table
from gtw_server.terminal.sim.tape import synthetic_tapes
from protocol import mt5_constants as c
from protocol.mt5_helpers import close, market_order
from protocol.mt5_structs import (
    STRUCT_TYPES,
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    build,
)
from protocol.server_time import ServerClock

__all__ = ["SIM_BUILD", "SimTerminal"]

SIM_BUILD: Final = 4755  # the terminal build this simulator reports
_VERSION: Final = (500, SIM_BUILD, "10 Jan 2025")
_SUCCESS: Final = (c.RES_S_OK, c.LAST_ERROR_MESSAGES[c.RES_S_OK])
# What the binding reports when the terminal is gone, by how it finds out (docs/MT5_API.md,
# section 1).
_NO_IPC: Final = (
    c.RES_E_INTERNAL_FAIL_CONNECT,
    c.LAST_ERROR_MESSAGES[c.RES_E_INTERNAL_FAIL_CONNECT],
)
_SEND_FAILED: Final = (
    c.RES_E_INTERNAL_FAIL_SEND,
    c.LAST_ERROR_MESSAGES[c.RES_E_INTERNAL_FAIL_SEND],
)
_RECV_FAILED: Final = (
    c.RES_E_INTERNAL_FAIL_RECEIVE,
    c.LAST_ERROR_MESSAGES[c.RES_E_INTERNAL_FAIL_RECEIVE],
)
_NOT_FOUND_TERMINAL: Final = (
    c.RES_E_INTERNAL_FAIL_INIT,
    c.LAST_ERROR_MESSAGES[c.RES_E_INTERNAL_FAIL_INIT],
)
_API_DISABLED: Final = (
    c.RES_E_AUTO_TRADING_DISABLED,
    c.LAST_ERROR_MESSAGES[c.RES_E_AUTO_TRADING_DISABLED],
)

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", None, bool)
H = TypeVar("H", TradeOrder, TradeDeal)
DateLike = int | float | datetime


def _not_found() -> CallFailed:
    return CallFailed(c.RES_E_NOT_FOUND, c.LAST_ERROR_MESSAGES[c.RES_E_NOT_FOUND])


def _terminal_call(
    failure: F,
) -> Callable[
    [Callable[Concatenate[SimTerminal, P], R]], Callable[Concatenate[SimTerminal, P], R | F]
]:
    """Wraps a method as a terminal call: serialised, failing when there is no connection
    (``SimTerminal._connection_up``), setting ``last_error`` to success on entry, and turning
    ``CallFailed`` into ``failure`` (None, or False for the functions that return a bool)."""

    def decorate(
        method: Callable[Concatenate[SimTerminal, P], R],
    ) -> Callable[Concatenate[SimTerminal, P], R | F]:
        @functools.wraps(method)
        def call(self: SimTerminal, /, *args: P.args, **kwargs: P.kwargs) -> R | F:
            with self._lock:
                if not self._connection_up():
                    return failure
                self._error = _SUCCESS
                try:
                    return method(self, *args, **kwargs)
                except CallFailed as exc:
                    self._error = exc.error
                    return failure

        return call

    return decorate


def _symbol_arg(symbols: Mapping[str, SymbolSpec], value: object, index: int) -> SymbolSpec:
    """A positional symbol name: a bad one is argument ``index``'s error, an unknown one -4."""
    if not isinstance(value, str) or utf16_len(value) > MAX_SYMBOL:
        raise positional(index)
    spec = symbols.get(value)
    if spec is None:
        raise _not_found()
    return spec


def _number_arg(value: object, index: int) -> float:
    if isinstance(value, int | float):
        return float(value)
    raise positional(index)


def _count_arg(value: object, index: int) -> int:
    if isinstance(value, int) and value >= 0:
        return value
    raise positional(index)


def _tick_count(flags: object, count: int) -> int:
    """How many ticks ``flags`` lets through: the simulator's quotes are bid/ask ticks (INFO),
    with no trades, so COPY_TICKS_TRADE finds none."""
    if flags not in (c.COPY_TICKS_ALL, c.COPY_TICKS_INFO, c.COPY_TICKS_TRADE):
        raise positional(3)
    return 0 if flags == c.COPY_TICKS_TRADE else count


def _check_filters(*, symbol: object, group: object, ticket: object, position: object) -> None:
    """The keyword filters of the ``*_get`` functions."""
    if symbol is not None and not (isinstance(symbol, str) and utf16_len(symbol) <= MAX_SYMBOL):
        raise invalid('Invalid "symbol" argument')
    if group is not None and not (isinstance(group, str) and utf16_len(group) <= MAX_GROUP):
        raise invalid('Invalid "group" argument')
    for name, value in (("ticket", ticket), ("position", position)):
        if value is not None and not (isinstance(value, int) and value >= 0):
            raise invalid(f'Invalid "{name}" argument')


class SimTerminal:
    """A simulated MetaTrader 5 terminal logged in to a simulated broker account.

    ``SimTerminal()`` is a ready USD demo account in memory (balance 10 000, leverage 1:100,
    hedging); ``initialize()`` must still be called first, as with the real package. With
    ``state_path`` the broker's state lives in that SQLite file and survives restarts;
    ``reset=True`` starts the file afresh from ``config``. ``clock`` returns epoch seconds
    (default ``time.time``) and drives the price walk; ``step()`` moves time ahead by hand.

    Besides the ``MetaTrader5`` surface it has ``step``, ``close`` and context-manager
    support (``close`` on exit), none of which the real module has.
    """

    if TYPE_CHECKING:
        # The constants are set on the class at the end of this module; this tells type
        # checkers that ``mt5.ORDER_TYPE_BUY`` and its kind are ints.
        def __getattr__(self, name: str) -> int: ...

    def __init__(
        self,
        *,
        state_path: str | os.PathLike[str] | None = None,
        config: SimConfig | None = None,
        clock: Callable[[], float] | None = None,
        reset: bool = False,
    ) -> None:
        config = SimConfig() if config is None else config
        self._config = config
        self._state_path = None if state_path is None else Path(state_path)
        self._clock = clock or time.time
        self._reset = reset
        suffix = config.symbol_suffix
        # Every time given and taken at the surface is on the trade server's clock.
        self._server = ServerClock(config.server_timezone)
        files = config.replay_files()
        exports = {name: read_export(file) for name, (file, _) in files.items()}
        added = [
            replayed_spec(name, SYMBOLS[like], exports[name])
            for name, (_, like) in files.items()
            if like is not None
        ]
        self._symbols = symbol_table(suffix, added)
        replayed = {
            name + suffix: ReplayTape(self._symbols[name + suffix], export, self._server)
            for name, export in exports.items()
        }
        self._tapes = synthetic_tapes(
            [spec for spec in self._symbols.values() if spec.name not in replayed],
            seed=config.seed,
            sessions=Sessions(always_open=config.always_open),
            rollover_spread=config.execution().rollover_spread,
            suffix=suffix,
        )
        if replayed:  # the simulator lives at the files' time
            self._tapes |= replayed
            first_s = max(tape.first_ms for tape in replayed.values()) / 1000
            start_s = config.replay_from_s()
            if start_s is None:
                start_s = first_s
            elif start_s < first_s:
                raise ReplayError(
                    f"replay_from {start_s} is before a file's first row ({first_s}):"
                    " there is no price to show"
                )
            self._clock = replay_clock(self._clock, start_s, config.replay_speed)
        elif (start_s := config.replay_from_s()) is not None:  # a moment of the made-up prices
            self._clock = replay_clock(self._clock, start_s, config.replay_speed)
        self._broker = Broker(
            Store(state_path, reset=reset),
            config,
            self._clock,
            symbols=self._symbols,
            tapes=self._tapes,
        )
        # A broker, not one account: every login the terminal logs in to has its own.
        self._brokers = {self._broker.account.login: self._broker}
        self._faults = Faults(config, started_ms=self._broker.now_ms())
        self._lock = threading.Lock()
        self._connected_at: int | None = None  # when initialize() connected, in ms
        self._closed = False
        self._error: tuple[int, str] = (0, "")
        self._selected = {spec.name for spec in self._symbols.values() if spec.selected}
        self._books: set[str] = set()  # market_book_add subscriptions
        self._request_id = 0
        self._execution_ms = config.execution().execution_ms
        self._delays = random.Random(f"sim-delay/{config.seed}")
        self._price_history = PriceHistory(
            self._tapes, max_bars=config.maxbars, server=self._server
        )

    # -- simulator controls (not in MetaTrader5) ----------------------------------------

    def step(self, seconds: float) -> None:
        """Moves the simulated time ``seconds`` ahead; prices walk through the ticks between.

        The next call catches up with them: what the ticks triggered (pending orders, SL, TP,
        expirations, a stop-out) is executed at the tick that reached it. Over more than
        ``MAX_REPLAY_TICKS`` (150 s) since the last call a symbol's price jumps in one draw,
        and triggers are checked against the price after the jump only: step a minute at a
        time, calling something in between, to see every tick.
        """
        with self._lock:
            for broker in self._brokers.values():
                broker.step(seconds)

    def close(self) -> None:
        """Disconnects, saves the prices and closes the state file. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed, self._connected_at = True, None
                for broker in self._brokers.values():
                    broker.close()

    def __enter__(self) -> SimTerminal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- connection -----------------------------------------------------------------------

    def _connection_up(self) -> bool:
        """Whether a call can reach the terminal; if not, ``last_error`` says why.

        A connection made before the terminal went away (``disconnect_at_s``) is found broken
        by the next call, which fails to write to the pipe (-10001); the binding then closes
        it, and every later call fails with -10004 until ``initialize()``.
        """
        if self._connected_at is None:
            self._error = _NO_IPC
            return False
        faults = self._faults
        if faults.may_go_away and faults.went_away(self._connected_at, self._broker.now_ms()):
            self._connected_at = None
            self._error = _SEND_FAILED
            return False
        return True

    def initialize(
        self,
        path_arg: str | None = None,
        /,
        *,
        path: str | None = None,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
        portable: bool = False,
    ) -> bool:
        """Connects to the terminal, logged in to ``login`` on ``server`` when given (any
        password): the simulated broker opens an account of that number (its own state file
        beside the first, ``sim.<login>.sqlite3``) the first time, as a broker's demo server
        would, so a script written for a real account runs as it is. ``server`` alone must be
        the current account's; a login known on another server is refused: -6. While the
        terminal is away (``disconnect_at_s``) it is not found: -10003."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this SimTerminal is closed")
            self._connected_at = None  # initialize() first closes any connection
            now_ms = self._broker.now_ms()
            if self._faults.away(now_ms):
                self._error = _NOT_FOUND_TERMINAL
                return False
            if not self._log_in(login, server):
                self._error = (c.RES_E_AUTH_FAILED, c.LAST_ERROR_MESSAGES[c.RES_E_AUTH_FAILED])
                return False
            self._connected_at = now_ms
            self._error = _SUCCESS
            return True

    def shutdown(self) -> bool:
        """Closes the connection; True always (the documentation's ``None`` is wrong)."""
        with self._lock:
            self._connected_at = None
            self._error = _SUCCESS
            return True

    @_terminal_call(False)
    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool:
        """Logs in to account ``login`` (any password), opened on first use as ``initialize``
        does; a login known on another ``server`` gets -6, with the connection left open, as
        the real ``login`` leaves it."""
        if not isinstance(login, int):
            raise positional(0)
        for index, value in ((1, password), (2, server)):
            if value is not None and not (isinstance(value, str) and utf16_len(value) <= 253):
                raise positional(index)
        if timeout is not None and not isinstance(timeout, int):
            raise positional(3)
        if not self._log_in(login, server):
            raise CallFailed(c.RES_E_AUTH_FAILED, c.LAST_ERROR_MESSAGES[c.RES_E_AUTH_FAILED])
        return True

    def _log_in(self, login: int | None, server: str | None) -> bool:
        """Make ``login`` (on ``server``) the current account, opening it if it is new;
        False when ``server`` is not that account's."""
        if login is not None and login != self._broker.account.login:
            broker = self._brokers.get(login)
            if broker is None:
                config = msgspec.structs.replace(
                    self._config, login=login, server=server or self._config.server
                )
                store = Store(self._account_state(login), reset=self._reset)
                broker = Broker(
                    store, config, self._clock, symbols=self._symbols, tapes=self._tapes
                )
                self._brokers[login] = broker
            if server is not None and server != broker.account.server:
                return False
            self._broker = broker
            return True
        return server is None or server == self._broker.account.server

    def _account_state(self, login: int) -> Path | None:
        """The state file of account ``login``, beside the first account's."""
        path = self._state_path
        return None if path is None else path.with_name(f"{path.stem}.{login}{path.suffix}")

    def last_error(self) -> tuple[int, str]:
        return self._error

    @_terminal_call(None)
    def version(self) -> tuple[int, int, str]:
        return _VERSION

    @_terminal_call(None)
    def terminal_info(self) -> TerminalInfo:
        account = self._broker.account
        return build(
            TerminalInfo,
            {
                "community_account": False,
                "community_connection": False,
                "connected": True,
                "dlls_allowed": False,
                "trade_allowed": self._config.algo_trading,
                "tradeapi_disabled": self._config.tradeapi_disabled,
                "email_enabled": False,
                "ftp_enabled": False,
                "notifications_enabled": False,
                "mqid": False,
                "build": SIM_BUILD,
                "maxbars": self._config.maxbars,
                "codepage": 0,
                "ping_last": 0,
                "community_balance": 0.0,
                "retransmission": 0.0,
                "company": account.company,
                "name": f"{account.company} MetaTrader 5 (simulated)",
                "language": "English",
                "path": "C:\\Program Files\\MetaTrader 5",
                "data_path": "C:\\Program Files\\MetaTrader 5",
                "commondata_path": "C:\\Users\\sim\\AppData\\Roaming\\MetaQuotes\\Terminal\\Common",
            },
        )

    @_terminal_call(None)
    def account_info(self) -> AccountInfo:
        return self._broker.account_info()

    # -- symbols ----------------------------------------------------------------------------

    @_terminal_call(None)
    def symbols_total(self) -> int:
        return len(self._symbols)

    @_terminal_call(None)
    def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...]:
        _check_filters(symbol=None, group=group, ticket=None, position=None)
        matches = group_filter(group) if group is not None else None
        return tuple(
            self._server.on_server(
                self._broker.symbol_info(spec, selected=spec.name in self._selected)
            )
            for spec in self._symbols.values()
            if matches is None or matches(spec.name)
        )

    @_terminal_call(None)
    def symbol_info(self, symbol: str, /) -> SymbolInfo:
        """A symbol's specification and quote; like its tick, only once it is in the Market
        Watch (the terminal answers -4 before ``symbol_select``; ``symbols_get`` lists all)."""
        spec = _symbol_arg(self._symbols, symbol, 0)
        if spec.name not in self._selected:
            raise _not_found()
        return self._server.on_server(self._broker.symbol_info(spec, selected=True))

    @_terminal_call(None)
    def symbol_info_tick(self, symbol: str, /) -> Tick:
        """The last tick; a symbol must be selected in the Market Watch to have one."""
        spec = _symbol_arg(self._symbols, symbol, 0)
        if spec.name not in self._selected:
            raise _not_found()
        return self._server.on_server(self._broker.tick(spec))

    @_terminal_call(False)
    def symbol_select(self, symbol: str, enable: object = True, /) -> bool:
        """Adds a symbol to the Market Watch, or removes it (``enable`` read by truthiness)."""
        spec = _symbol_arg(self._symbols, symbol, 0)
        if enable:
            self._selected.add(spec.name)
        else:
            self._selected.discard(spec.name)
        return True

    # -- market depth ------------------------------------------------------------------------

    @_terminal_call(None)
    def market_book_add(self, symbol: str, /) -> bool:
        """Subscribes to ``symbol``'s depth of market; False (last_error still success) for a
        symbol that is unknown or not in the Market Watch."""
        if not isinstance(symbol, str) or utf16_len(symbol) > MAX_SYMBOL:
            raise positional(0)
        if symbol not in self._selected:
            return False
        self._books.add(symbol)
        return True

    @_terminal_call(None)
    def market_book_release(self, symbol: str, /) -> bool:
        if not isinstance(symbol, str) or utf16_len(symbol) > MAX_SYMBOL:
            raise positional(0)
        if symbol not in self._books:
            return False
        self._books.discard(symbol)
        return True

    @_terminal_call(None)
    def market_book_get(self, symbol: str, /) -> tuple[BookInfo, ...]:
        """The depth of market of a subscribed symbol (``book``); -4 if not subscribed."""
        spec = _symbol_arg(self._symbols, symbol, 0)
        if spec.name not in self._books:
            raise _not_found()
        return book(spec, self._broker.quote(spec))

    # -- price history ----------------------------------------------------------------------

    def _bars_arg(self, value: object, index: int) -> int:
        """A count of bars: more than the terminal keeps (``maxbars``) is a terminal error."""
        count = _count_arg(value, index)
        if count > self._config.maxbars:
            raise CallFailed(c.RES_E_INVALID_PARAMS, c.LAST_ERROR_MESSAGES[c.RES_E_INVALID_PARAMS])
        return count

    def _history_source(self, symbol: object) -> tuple[str, int]:
        """The symbol of a ``copy_*`` call (selected), and the terminal's time."""
        spec = _symbol_arg(self._symbols, symbol, 0)
        if spec.name not in self._selected:
            raise _not_found()
        return spec.name, self._broker.sync()

    def _chart(self, symbol: object, timeframe: object) -> tuple[str, int, int]:
        """The symbol of a ``copy_rates_*`` call, the terminal's time, the timeframe's length."""
        name, now_ms = self._history_source(symbol)
        length_ms = timeframe_ms(timeframe)
        if length_ms is None:
            raise positional(1)
        return name, now_ms, length_ms

    @_terminal_call(None)
    def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: DateLike, count: int, /
    ) -> Any:
        """The ``count`` bars that start at or before ``date_from``, oldest first."""
        start_ms, number = parse_date(date_from, 2) * 1000, self._bars_arg(count, 3)
        name, now_ms, length_ms = self._chart(symbol, timeframe)
        history = self._price_history
        span_ms = max(0, now_ms - self._server.to_utc_ms(start_ms)) + reach_ms(number, length_ms)
        bars = history.newest(name, length_ms, now_ms, number, span_ms, before_ms=start_ms)
        rates = history.rates(name, bars)
        return rates[rates["time"] * 1000 <= start_ms][-number:] if number else rates[:0]

    @_terminal_call(None)
    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, /
    ) -> Any:
        """``count`` bars ending ``start_pos`` bars before the current one (0), oldest first."""
        start, number = _count_arg(start_pos, 2), self._bars_arg(count, 3)
        name, now_ms, length_ms = self._chart(symbol, timeframe)
        history, want = self._price_history, start + number
        rates = history.rates(
            name, history.newest(name, length_ms, now_ms, want, reach_ms(want, length_ms))
        )
        end = len(rates) - start
        return rates[max(0, end - number) : max(0, end)]

    @_terminal_call(None)
    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: DateLike, date_to: DateLike, /
    ) -> Any:
        """The bars that start from ``date_from`` to ``date_to``, both included."""
        start_ms, end_ms = parse_date(date_from, 2) * 1000, parse_date(date_to, 3) * 1000
        name, now_ms, length_ms = self._chart(symbol, timeframe)
        history = self._price_history
        bars = history.bars(name, length_ms, self._server.to_utc_ms(start_ms), now_ms)
        rates = history.rates(name, bars)
        return rates[rates["time"] * 1000 <= end_ms]

    @_terminal_call(None)
    def copy_ticks_from(self, symbol: str, date_from: DateLike, count: int, flags: int, /) -> Any:
        """Up to ``count`` ticks from ``date_from`` on (an empty array past the history)."""
        name, now_ms = self._history_source(symbol)
        start_ms, number = parse_date(date_from, 1) * 1000, _count_arg(count, 2)
        start_ms = self._server.to_utc_ms(start_ms)
        return self._price_history.ticks(name, start_ms, now_ms, _tick_count(flags, number))

    @_terminal_call(None)
    def copy_ticks_range(
        self, symbol: str, date_from: DateLike, date_to: DateLike, flags: int, /
    ) -> Any:
        """The ticks from ``date_from`` to ``date_to``, both included."""
        name, now_ms = self._history_source(symbol)
        start_ms, end_ms = parse_date(date_from, 1) * 1000, parse_date(date_to, 2) * 1000
        start_ms, end_ms = self._server.to_utc_ms(start_ms), self._server.to_utc_ms(end_ms)
        end_ms = min(end_ms + 999, now_ms)
        return self._price_history.ticks(name, start_ms, end_ms, _tick_count(flags, MAX_TICKS))

    # -- positions and orders --------------------------------------------------------------

    @_terminal_call(None)
    def positions_total(self) -> int:
        return self._broker.positions_total()

    @_terminal_call(None)
    def positions_get(
        self,
        *args: object,
        symbol: str | None = None,
        group: str | None = None,
        ticket: int | None = None,
    ) -> tuple[TradePosition, ...]:
        """Open positions: by ``ticket``, else ``symbol``, else ``group``, else all."""
        if args:
            raise invalid("Unnamed arguments not allowed")
        _check_filters(symbol=symbol, group=group, ticket=ticket, position=None)
        found = self._broker.positions(symbol=symbol, group=group, ticket=ticket)
        return tuple(map(self._server.on_server, found))

    @_terminal_call(None)
    def orders_total(self) -> int:
        return self._broker.orders_total()

    @_terminal_call(None)
    def orders_get(
        self,
        *args: object,
        symbol: str | None = None,
        group: str | None = None,
        ticket: int | None = None,
    ) -> tuple[TradeOrder, ...]:
        """Active pending orders, filtered as ``positions_get`` filters positions."""
        if args:
            raise invalid("Unnamed arguments not allowed")
        _check_filters(symbol=symbol, group=group, ticket=ticket, position=None)
        found = self._broker.orders(symbol=symbol, group=group, ticket=ticket)
        return tuple(map(self._server.on_server, found))

    # -- history -------------------------------------------------------------------------------

    @_terminal_call(None)
    def history_orders_total(self, date_from: DateLike, date_to: DateLike, /) -> int:
        return self._history_total(HISTORY_ORDERS, date_from, date_to)

    @_terminal_call(None)
    def history_orders_get(
        self,
        *args: DateLike,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...]:
        """Orders of the history: ``(date_from, date_to[, group=])``, ``ticket=`` (the
        order's) or ``position=`` (every order of a position)."""
        return self._history(HISTORY_ORDERS, args, group, ticket, position)

    @_terminal_call(None)
    def history_deals_total(self, date_from: DateLike, date_to: DateLike, /) -> int:
        return self._history_total(HISTORY_DEALS, date_from, date_to)

    @_terminal_call(None)
    def history_deals_get(
        self,
        *args: DateLike,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...]:
        """Deals: ``(date_from, date_to[, group=])``, ``ticket=`` (every deal of that *order*,
        as documented) or ``position=`` (every deal of a position)."""
        return self._history(HISTORY_DEALS, args, group, ticket, position)

    def _history_total(self, kind: History[Any], date_from: object, date_to: object) -> int:
        start, end = self._utc_s(parse_date(date_from, 0)), self._utc_s(parse_date(date_to, 1))
        self._broker.sync()  # what the prices triggered is history too
        return self._broker.store.history_count(kind, start, end)

    def _utc_s(self, server_s: int) -> int:
        """A date given to the terminal (the server's clock) as the store keeps times."""
        return self._server.to_utc_s(server_s)

    def _history(
        self,
        kind: History[H],
        args: tuple[object, ...],
        group: object,
        ticket: object,
        position: object,
    ) -> tuple[H, ...]:
        _check_filters(symbol=None, group=group, ticket=ticket, position=position)
        self._broker.sync()  # what the prices triggered is history too
        store = self._broker.store
        on_server = self._server.on_server
        if isinstance(ticket, int):
            column: Literal["ticket", "order"] = "ticket" if kind is HISTORY_ORDERS else "order"
            return tuple(map(on_server, store.history_where(kind, column, ticket)))
        if isinstance(position, int):
            return tuple(map(on_server, store.history_where(kind, "position_id", position)))
        if len(args) != 2:
            raise invalid("Invalid number of arguments" if args else "Invalid arguments")
        start, end = self._utc_s(parse_date(args[0], 0)), self._utc_s(parse_date(args[1], 1))
        rows = store.history_between(kind, start, end)
        if isinstance(group, str):
            matches = group_filter(group)
            return tuple(on_server(row) for row in rows if matches(row.symbol))
        return tuple(map(on_server, rows))

    # -- trading ---------------------------------------------------------------------------------

    @_terminal_call(None)
    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float, /) -> float:
        """Margin in the account currency for ``volume`` lots at ``price``."""
        self._order_type_arg(action, allowed=range(c.ORDER_TYPE_CLOSE_BY))
        spec = _symbol_arg(self._symbols, symbol, 1)
        return self._broker.calc_margin(spec, _number_arg(volume, 2), _number_arg(price, 3))

    @_terminal_call(None)
    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float, /
    ) -> float:
        """Profit in the account currency of a deal from ``price_open`` to ``price_close``."""
        order_type = self._order_type_arg(action, allowed=(c.ORDER_TYPE_BUY, c.ORDER_TYPE_SELL))
        spec = _symbol_arg(self._symbols, symbol, 1)
        numbers = [
            _number_arg(value, index)
            for index, value in enumerate((volume, price_open, price_close), start=2)
        ]
        return self._broker.calc_profit(spec, order_type, *numbers)

    @staticmethod
    def _order_type_arg(value: object, *, allowed: range | tuple[int, ...]) -> int:
        if not isinstance(value, int):
            raise positional(0)
        if value not in allowed:
            raise CallFailed(c.RES_E_INVALID_PARAMS, c.LAST_ERROR_MESSAGES[c.RES_E_INVALID_PARAMS])
        return value

    @_terminal_call(None)
    def order_check(self, /, *args: dict[str, Any], **kwargs: Any) -> OrderCheckResult:
        """Checks a trade request (one dict, or keywords) without sending it."""
        return self._broker.check(parse_request("order_check", args, kwargs))

    @_terminal_call(None)
    def order_send(self, /, *args: dict[str, Any], **kwargs: Any) -> OrderSendResult:
        """Sends a trade request (one dict, or keywords) to the trade server.

        The result is committed before anything can go wrong on the way back: the fault
        switches (``faults``) hang, delay or lose the reply only after that, except
        ``hang_before_order``, which hangs before the order reaches the trade server.
        """
        request = parse_request("order_send", args, kwargs)
        if self._config.tradeapi_disabled:
            raise CallFailed(*_API_DISABLED)
        self._request_id = self._request_id % (2**32 - 1) + 1
        if not self._config.algo_trading:  # the terminal itself refuses: nothing is sent
            retcode = c.TRADE_RETCODE_CLIENT_DISABLES_AT
            comment = c.RETCODE_COMMENTS[retcode]
            return OrderSendResult(
                (retcode, 0, 0, 0.0, 0.0, 0.0, 0.0, comment, self._request_id, 0, request)
            )
        faults, broker = self._faults, self._broker
        order = faults.order_sent()
        if order.hang_before:
            hang_forever()
        low, high = self._execution_ms
        if high > 0:  # on its way to the server: the price may move meanwhile
            time.sleep(self._delays.uniform(low, high) / 1000)
        sent_ms = broker.now_ms()
        result = broker.send(request, self._request_id, dealer=order.dealer)
        if order.hang:
            hang_forever()
        faults.latency()
        if order.lose_reply or (faults.may_go_away and faults.went_away(sent_ms, broker.now_ms())):
            self._connected_at = None
            raise CallFailed(*_RECV_FAILED)
        return result

    # -- the package's pure-Python helpers (helpers) ------------------------------------

    def Buy(  # noqa: N802 (the package's own name)
        self,
        symbol: str,
        volume: float,
        price: float | None = None,
        *,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        """A market buy, at ``price`` or at the ask (retried on a requote)."""
        return market_order(
            self, c.ORDER_TYPE_BUY, symbol, volume, price, comment=comment, ticket=ticket
        )

    def Sell(  # noqa: N802 (the package's own name)
        self,
        symbol: str,
        volume: float,
        price: float | None = None,
        *,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        """A market sell, at ``price`` or at the bid (retried on a requote)."""
        return market_order(
            self, c.ORDER_TYPE_SELL, symbol, volume, price, comment=comment, ticket=ticket
        )

    def Close(  # noqa: N802 (the package's own name)
        self, symbol: str, *, comment: str | None = None, ticket: int | None = None
    ) -> bool | Literal["Partially"] | None:
        """Closes every position of ``symbol`` (or the one with ``ticket``)."""
        return close(self, symbol, comment=comment, ticket=ticket)


# The module's structure types, as attributes, so that ``isinstance(p, mt5.TradePosition)``
# works as with the package; and the package release whose surface this follows.
for _type in STRUCT_TYPES:
    setattr(SimTerminal, _type.__name__, _type)
del _type
SimTerminal.__version__ = c.PACKAGE_VERSION  # type: ignore[attr-defined]

# The module's constants, as attributes: exactly the ints the package exports.
for _name in c.__all__:
    if isinstance(_value := getattr(c, _name), int):
        setattr(SimTerminal, _name, _value)
del _name, _value
