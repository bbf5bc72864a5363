"""The gateway's operations, in terms of the ``MetaTrader5`` module's API.

``TerminalAdapter`` wraps anything with that module's surface (the real package or
``SimTerminal``) and turns a gateway command (open, close, account, positions) into the right
sequence of terminal calls, with the terminal's quirks handled in one place: ``initialize``
before anything, ``None`` plus ``last_error()`` instead of exceptions, floats that must be
floats, the symbol's filling-mode bitmask, and position tickets that differ from order tickets
on netting accounts. It runs inside the terminal worker process, never in the event loop's.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final, Literal

import msgspec
from msgspec import Struct

from gtw_server.errors import TerminalDisconnected, TerminalError, TerminalUnavailable
from gtw_server.fitting import SymbolTerms, VolumeRefused, fit_prices, fit_volume, lots
from gtw_server.symbol_names import AmbiguousSymbol, close_names
from gtw_server.tagging import tag_of
from protocol import Account, ErrorCode, Filling, PendingType, Position, Side, terminal_answer
from protocol.symbol_names import suffixed

__all__ = [
    "DEFAULT_DEVIATION",
    "PENDING_ORDER_TYPES",
    "CloseOrder",
    "FindOrders",
    "ListTags",
    "OpenOrder",
    "OrderOutcome",
    "TerminalAdapter",
    "TerminalStatus",
    "filling_constant",
    "load_metatrader5",
    "rejected_outcome",
]

DEFAULT_DEVIATION: Final = 10  # points, as PROTOCOL.md and the package's own Buy()/Sell()

# last_error() codes that mean the pipe to the terminal is gone (docs/MT5_API.md section 1).
_IPC_ERRORS: Final = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})
# After these, a sent order may or may not have reached the terminal.
_IPC_UNCERTAIN: Final = frozenset({-10000, -10002, -10005})
_PLACED: Final = 10008
_DONE: Final = 10009
_SUCCESS: Final = frozenset({_PLACED, _DONE, 10010})  # PLACED, DONE, DONE_PARTIAL
_NO_TRADE_SERVER: Final = 10031  # TRADE_RETCODE_CONNECTION
_INVALID_VOLUME: Final = 10014  # TRADE_RETCODE_INVALID_VOLUME
# Retcodes with an error code of their own: what to fix is plain from the code.
_RETCODE_ERRORS: Final = {
    10015: ErrorCode.INVALID_PRICE,
    10022: ErrorCode.INVALID_EXPIRATION,
    10025: ErrorCode.NO_CHANGES,
}
# ORDER_TYPE_BUY_LIMIT .. ORDER_TYPE_SELL_STOP_LIMIT, as the wire names them.
PENDING_ORDER_TYPES: Final = frozenset(kind.constant for kind in PendingType)
_DAY_S: Final = 86_400
# A Market Watch symbol whose quote has not moved for this long is not the clock to read:
# every symbol's last quote is looked at again (a symbols_get, at most this often).
_QUIET_QUOTE_S: Final = 600.0
# Read filters naming no symbol (or several) are remembered as themselves up to this many: the
# names come unsigned, from anyone who reaches the port.
_UNRESOLVED_KEPT: Final = 256

_TRADE_MODES: Final = {0: "DEMO", 1: "CONTEST", 2: "REAL"}
_MARGIN_MODES: Final = {0: "NETTING", 1: "EXCHANGE", 2: "HEDGING"}
_HEDGING: Final = 2

# SYMBOL_FILLING_* bits of SymbolInfo.filling_mode, and the ORDER_FILLING_* values to send.
_SYMBOL_FILLING_FOK: Final = 1
_SYMBOL_FILLING_IOC: Final = 2
_ORDER_FILLING_FOK: Final = 0
_ORDER_FILLING_IOC: Final = 1
_ORDER_FILLING_RETURN: Final = 2
_EXECUTION_MARKET: Final = 2


class OpenOrder(Struct, frozen=True, kw_only=True):
    """Open a position with a market deal."""

    symbol: str
    side: Side
    volume: float
    comment: str
    price: float | None = None
    sl: float | None = None
    tp: float | None = None
    deviation: int = DEFAULT_DEVIATION
    magic: int = 0
    filling: int | None = None  # ORDER_FILLING_*; the one the symbol allows when None
    volume_down: bool = False  # a volume off the step is rounded down, not refused


class CloseOrder(Struct, frozen=True, kw_only=True):
    """Close a position, wholly or in part; the deal's ``magic`` is the position's when
    ``None``."""

    ticket: int
    comment: str
    volume: float | None = None
    deviation: int = DEFAULT_DEVIATION
    magic: int | None = None
    filling: int | None = None
    volume_down: bool = False


class OrderOutcome(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What came of an order.

    ``DONE``: carried out with no deal (a pending order placed, an order or stops changed, an
    order cancelled). ``UNKNOWN`` means the terminal connection broke after the order was sent,
    so it may have executed: only the terminal's history can tell (reconciliation).
    """

    status: Literal["FILLED", "DONE", "REJECTED", "UNKNOWN"]
    error_code: ErrorCode | None = None
    error_msg: str | None = None
    retcode: int | None = None
    comment: str | None = None
    ticket: int | None = None
    order: int | None = None
    deal: int | None = None
    volume: float | None = None
    price: float | None = None
    # The rest of order_send's result (Reply's fields of the same names).
    bid: float | None = None
    ask: float | None = None
    request_id: int | None = None
    retcode_external: int | None = None
    # What was fitted before sending: each price moved onto the tick grid ("sl 1.0849999999
    # to 1.085", logged at DEBUG by the executor), and the volume asked for when it was
    # rounded down (the reply's ``volume_requested``).
    fitted: list[str] | None = None
    volume_requested: float | None = None
    # The broker's name of the symbol, when the request's was resolved to it (the reply's
    # ``symbol``).
    resolved: str | None = None
    # Found in the history: what the deal was, to tell the order it answers from another
    # order whose tag is the same.
    symbol: str | None = None
    side: Side | None = None
    # What the deal did (entered or left), or PLACE: a pending order with the tag.
    action: Literal["OPEN", "CLOSE", "PLACE"] | None = None


class FindOrders(Struct, frozen=True, kw_only=True):
    """Look up, by tag, orders the gateway sent since ``since`` (UTC epoch seconds)."""

    tags: list[str]
    since: float


class ListTags(Struct, frozen=True, kw_only=True):
    """Ask for the tag of every deal and active order since ``since`` (UTC epoch seconds)."""

    since: float


class TerminalStatus(Struct, frozen=True, kw_only=True):
    """Whether the terminal is connected, and to which account."""

    connected: bool
    login: int = 0
    server: str = ""
    trade_mode: str = ""
    # The terminal's "Algo Trading" button, and its option to refuse the Python API.
    trade_allowed: bool = True
    tradeapi_disabled: bool = False
    balance: float = 0.0
    currency: str = ""
    positions: int = 0
    error: str = ""
    # The time of a quote that changed since the last status (ms, the trade server's clock;
    # 0: none moved): what the gateway learns the server's offset from UTC by.
    quote_msc: int = 0


def load_metatrader5() -> ModuleType:
    """Import the official ``MetaTrader5`` package (Windows only), or say plainly why it cannot
    be used here."""
    try:
        return importlib.import_module("MetaTrader5")
    except ImportError as exc:
        raise TerminalUnavailable(
            "the MetaTrader5 package is not installed. It exists only for Windows: there, "
            "install the gateway with `pip install mt5-bridge[mt5]`. Elsewhere use "
            f"--terminal sim (the simulated terminal). ({exc})"
        ) from None


class TerminalAdapter:
    """Gateway operations over a ``MetaTrader5``-like object ``mt5``.

    ``init_kwargs`` are passed to ``mt5.initialize`` (path, login, password, server, timeout);
    ``symbols`` maps names a strategy uses to the broker's (``[gateway] symbols``).
    """

    def __init__(
        self,
        mt5: Any,
        init_kwargs: dict[str, Any] | None = None,
        symbols: Mapping[str, str] | None = None,
    ) -> None:
        self.mt5 = mt5
        self._init_kwargs = init_kwargs or {}
        self._connected = False
        self.hedging = True  # the account's margin mode, as of the last status()
        self._terms: dict[str, SymbolTerms] = {}
        self._symbols = dict(symbols or {})
        self._resolved: dict[str, str] = {}
        self._unresolved: set[str] = set()  # read filters that select by the name as it is
        # The symbol whose quote is read for the time, its last time (ms), when it last moved.
        self._quoting: str | None = None
        self._quote_msc = 0
        self._quote_moved = -_QUIET_QUOTE_S

    # -- connection ---------------------------------------------------------------------

    def connect(self) -> TerminalStatus:
        """(Re)initialise the terminal connection and say what it is connected to."""
        self._terms.clear()
        self._resolved.clear()
        self._unresolved.clear()
        self._quoting, self._quote_msc, self._quote_moved = None, 0, -_QUIET_QUOTE_S
        if not self.mt5.initialize(**self._init_kwargs):
            self._connected = False
            code, message = self.mt5.last_error()
            return TerminalStatus(connected=False, error=f"initialize failed: {code} {message}")
        self._connected = True
        return self.status()

    def status(self) -> TerminalStatus:
        """Ask the terminal whether it is still connected to its trade server."""
        info = self.mt5.terminal_info() if self._connected else None
        account = self.mt5.account_info() if info is not None else None
        if info is None or account is None:
            self._connected = False
            code, message = self.mt5.last_error()
            return TerminalStatus(connected=False, error=f"{code} {message}")
        self.hedging = account.margin_mode == _HEDGING
        return TerminalStatus(
            connected=bool(info.connected),
            login=account.login,
            server=account.server,
            trade_mode=_TRADE_MODES.get(account.trade_mode, str(account.trade_mode)),
            trade_allowed=bool(info.trade_allowed),
            tradeapi_disabled=bool(info.tradeapi_disabled),
            balance=account.balance,
            currency=account.currency,
            positions=self.mt5.positions_total() or 0,
            quote_msc=self._live_quote(),
        )

    def _live_quote(self) -> int:
        """The time (ms, the server's clock) of a quote that changed since the last look, or
        0: only a live quote tells the server's clock (a closed market's last quote, hours
        or days old, would pass for one a whole number of quarter hours away). One tick read
        of the symbol that moved last; every Market Watch symbol's last quote (one
        ``symbols_get``) when that one has not moved for ``_QUIET_QUOTE_S`` (its market
        closed), at most that often, to pick the one to read next."""
        now = time.monotonic()
        if self._quoting is not None:
            tick = self.mt5.symbol_info_tick(self._quoting)
            seen = tick.time_msc if tick is not None else 0
            # Changed, not later: after the clock went back an hour it is still live.
            moved = bool(seen) and bool(self._quote_msc) and seen != self._quote_msc
            if seen:
                self._quote_msc = seen
            if moved:
                self._quote_moved = now
                return seen
            if now - self._quote_moved < _QUIET_QUOTE_S:
                return 0
        self._quote_moved = now  # looked at everything: not again for a while
        watched = [info for info in self.mt5.symbols_get() or () if info.select]
        if watched:
            freshest = max(watched, key=lambda info: info.time)
            self._quoting, self._quote_msc = freshest.name, 0  # moving: seen at the next look
        return 0

    def ensure_connected(self) -> None:
        if not self._connected and not self.connect().connected:
            raise TerminalDisconnected("the terminal is not connected")

    def read(self, what: str, *args: Any, **query: Any) -> Any:
        """``mt5.<what>(*args, **query)``, whose ``None`` (the package's failure) is raised as
        ``failed(what)``."""
        found = getattr(self.mt5, what)(*args, **query)
        if found is None:
            raise self.failed(what)
        return found

    def failed(self, what: str) -> TerminalError:
        """The exception for a call that returned ``None``, read from ``last_error()``."""
        code, message = self.mt5.last_error()
        if code in _IPC_ERRORS:
            self._connected = False
            return TerminalDisconnected(f"{what}: terminal connection lost ({code} {message})")
        return TerminalError(f"{what} failed: {code} {message}")

    # -- queries --------------------------------------------------------------------------

    def account(self) -> Account:
        self.ensure_connected()
        info = self.mt5.account_info()
        if info is None:
            raise self.failed("account_info")
        return Account(
            login=info.login,
            server=info.server,
            currency=info.currency,
            leverage=info.leverage,
            balance=info.balance,
            equity=info.equity,
            margin=info.margin,
            margin_free=info.margin_free,
            margin_level=info.margin_level,
            profit=info.profit,
            trade_mode=_TRADE_MODES.get(info.trade_mode, str(info.trade_mode)),
            trade_allowed=bool(info.trade_allowed),
            credit=info.credit,
            name=info.name,
            company=info.company,
            margin_mode=_MARGIN_MODES.get(info.margin_mode, str(info.margin_mode)),
        )

    def positions(self, symbol: str | None = None) -> list[Position]:
        self.ensure_connected()
        found = (
            self.mt5.positions_get(symbol=self.filter_name(symbol))
            if symbol
            else self.mt5.positions_get()
        )
        if found is None:
            raise self.failed("positions_get")
        return [_position(p) for p in found]

    # -- orders ---------------------------------------------------------------------------

    def open(self, order: OpenOrder) -> OrderOutcome:
        self.ensure_connected()
        try:
            symbol = self.resolve(order.symbol)
        except AmbiguousSymbol as exc:
            return rejected_outcome(str(exc), code=ErrorCode.SYMBOL_AMBIGUOUS)
        filling = self.filling(symbol, order.filling)
        if filling is None:
            return rejected_outcome(self.unknown_symbol(order.symbol))
        tick = self.mt5.symbol_info_tick(symbol)
        if tick is None:
            return self.refused("symbol_info_tick")
        buy = order.side is Side.BUY
        request = {
            "action": self.mt5.TRADE_ACTION_DEAL,
            "symbol": symbol,
            "volume": float(order.volume),
            "type": self.mt5.ORDER_TYPE_BUY if buy else self.mt5.ORDER_TYPE_SELL,
            "price": float(order.price or (tick.ask if buy else tick.bid)),
            "sl": float(order.sl or 0.0),
            "tp": float(order.tp or 0.0),
            "deviation": order.deviation,
            "magic": order.magic,
            "comment": order.comment,
            "type_time": self.mt5.ORDER_TIME_GTC,
            "type_filling": filling,
        }
        outcome = self.send(request, volume_down=order.volume_down)
        if symbol != order.symbol:
            outcome = msgspec.structs.replace(outcome, resolved=symbol)
        if outcome.status == "FILLED" and not self.hedging:
            # A netting account has one position per symbol, whose ticket is this order's only
            # if it opened it (not after an add, and a reversal gives it a new one).
            held = self.mt5.positions_get(symbol=symbol)
            if held:
                return _with_ticket(outcome, held[0].ticket)
        return outcome

    def close(self, order: CloseOrder) -> OrderOutcome:
        self.ensure_connected()
        found = self.mt5.positions_get(ticket=order.ticket)
        if found is None:
            return self.refused("positions_get")
        if not found:
            return rejected_outcome(
                f"position {order.ticket} is not open", code=ErrorCode.POSITION_NOT_FOUND
            )
        position = found[0]
        filling = self.filling(position.symbol, order.filling)
        if filling is None:
            return rejected_outcome(f"the terminal has no specification of {position.symbol!r}")
        tick = self.mt5.symbol_info_tick(position.symbol)
        if tick is None:
            return self.refused("symbol_info_tick")
        closing_buy = position.type == self.mt5.POSITION_TYPE_BUY
        request = {
            "action": self.mt5.TRADE_ACTION_DEAL,
            "position": position.ticket,
            "symbol": position.symbol,
            "volume": float(order.volume or position.volume),
            "type": self.mt5.ORDER_TYPE_SELL if closing_buy else self.mt5.ORDER_TYPE_BUY,
            "price": float(tick.bid if closing_buy else tick.ask),
            "deviation": order.deviation,
            "magic": position.magic if order.magic is None else order.magic,
            "comment": order.comment,
            "type_time": self.mt5.ORDER_TIME_GTC,
            "type_filling": filling,
        }
        outcome = self.send(request, volume_down=order.volume_down)
        return _with_ticket(outcome, position.ticket) if outcome.status == "FILLED" else outcome

    def find(self, query: FindOrders) -> dict[str, OrderOutcome]:
        """The outcome of each tagged order found in the terminal: ``DONE`` (PLACE) for a
        pending order with the tag, active or in the history; ``FILLED`` from its deal
        history; ``UNKNOWN`` while a market order is still among the active orders; absent,
        none of these.

        Orders and their deals carry the request's comment, which starts with the tag, so a
        deal with the tag proves the order executed. A market order with the tag among the
        active ones is still on its way to the trade server (not executed *yet*).
        """
        wanted = set(query.tags)
        deals, active, orders = self._tagged_since(query.since)
        found: dict[str, OrderOutcome] = {}
        for order in (*active, *orders):
            tag = tag_of(order.comment)
            if tag in wanted and tag not in found and order.type in PENDING_ORDER_TYPES:
                found[tag] = OrderOutcome(
                    status="DONE",
                    retcode=_PLACED,
                    comment="found in the terminal's orders",
                    ticket=order.ticket,
                    order=order.ticket,
                    volume=order.volume_initial,
                    price=order.price_open,
                    symbol=order.symbol,
                    action="PLACE",
                )
        for deal in deals:
            tag = tag_of(deal.comment)
            if tag in wanted and tag not in found:
                found[tag] = OrderOutcome(
                    status="FILLED",
                    retcode=_DONE,
                    comment="found in the terminal's history",
                    ticket=deal.position_id,
                    order=deal.order,
                    deal=deal.ticket,
                    volume=deal.volume,
                    price=deal.price,
                    symbol=deal.symbol,
                    side=Side.BUY if deal.type == self.mt5.DEAL_TYPE_BUY else Side.SELL,
                    action="OPEN" if deal.entry == self.mt5.DEAL_ENTRY_IN else "CLOSE",
                )
        for order in active:
            tag = tag_of(order.comment)
            if tag in wanted and tag not in found:
                found[tag] = OrderOutcome(
                    status="UNKNOWN",
                    comment=f"still active in the terminal as order #{order.ticket}",
                    order=order.ticket,
                )
        return found

    def tags(self, query: ListTags) -> list[str]:
        """The tags of the deals and orders since ``query.since`` and of the active orders:
        every order the gateway sent in that window that executed, or still may."""
        found = self._tagged_since(query.since)
        return sorted({tag for items in found for item in items if (tag := tag_of(item.comment))})

    def _tagged_since(self, since: float) -> tuple[Any, Any, Any]:
        """The deals since ``since``, the active orders, and the orders of the history since
        ``since``. The window is padded by days because history is kept in the trade server's
        time zone, not UTC."""
        self.ensure_connected()
        active = self.mt5.orders_get()
        if active is None:
            raise self.failed("orders_get")
        window = (int(since) - _DAY_S, int(time.time()) + 2 * _DAY_S)
        deals = self.mt5.history_deals_get(*window)
        if deals is None:
            raise self.failed("history_deals_get")
        orders = self.mt5.history_orders_get(*window)
        if orders is None:
            raise self.failed("history_orders_get")
        return deals, active, orders

    def filling(self, symbol: str, asked: int | None = None) -> int | None:
        """The filling mode to send for ``symbol``: ``asked``, else the one the symbol allows
        (``None``: unknown symbol)."""
        terms = self.terms(symbol)
        if terms is None:
            return None
        return terms.filling if asked is None else asked

    def terms(self, symbol: str) -> SymbolTerms | None:
        """What an order for ``symbol`` must respect (``None``: unknown symbol). Remembered
        per connection: a symbol's terms do not change while trading, and each lookup is an
        IPC round trip."""
        terms = self._terms.get(symbol)
        if terms is None:
            info = self.symbol_info(symbol)
            if info is None:
                return None
            terms = self._terms[symbol] = SymbolTerms(
                filling=_filling(info),
                volume_min=info.volume_min,
                volume_max=info.volume_max,
                volume_step=info.volume_step,
                tick_size=info.trade_tick_size,
                digits=info.digits,
            )
        return terms

    def resolve(self, symbol: str) -> str:
        """The broker's name for ``symbol`` (``symbol_names``): the ``[gateway] symbols``
        map's, else ``symbol`` when the terminal knows it, else the one symbol that is it plus
        a suffix; ``symbol`` itself when none is (the caller refuses it as unknown). Raises
        ``AmbiguousSymbol`` when several are. Remembered per connection."""
        mapped = self._symbols.get(symbol) or self._resolved.get(symbol)
        if mapped is not None:
            return mapped
        if self.symbol_info(symbol) is None:
            known = self.mt5.symbols_get()  # every symbol, in the Market Watch or not
            candidates = suffixed(symbol, (info.name for info in known or ()))
            if len(candidates) > 1:
                raise AmbiguousSymbol(symbol, candidates)
            if not candidates:
                return symbol
            self._resolved[symbol] = candidates[0]
            return candidates[0]
        self._resolved[symbol] = symbol
        return symbol

    @property
    def names(self) -> dict[str, str]:
        """The broker's name of every name resolved on this connection (the map's included),
        and the read filters that select by the name as it is: what a filter of the trade
        watcher's last look may select by."""
        return {**{name: name for name in self._unresolved}, **self._resolved, **self._symbols}

    def filter_name(self, symbol: str) -> str:
        """The broker's name for a read's ``symbol`` filter (``resolve``); an unknown or
        ambiguous name as it is (it then selects nothing)."""
        try:
            name = self.resolve(symbol)
        except AmbiguousSymbol:
            name = symbol
        known = symbol in self._resolved or symbol in self._symbols
        if not known and len(self._unresolved) < _UNRESOLVED_KEPT:
            self._unresolved.add(symbol)
        return name

    def symbol_info(self, symbol: str) -> Any:
        """The terminal's ``SymbolInfo`` of ``symbol``, selecting it in the Market Watch first
        if it is not there; ``None`` for a symbol the terminal does not know. Raises
        ``TerminalDisconnected`` when the terminal is gone."""
        info = self.mt5.symbol_info(symbol)
        if info is None:
            # Outside the Market Watch a symbol has no info either (-4): select it, then
            # ask again. An unknown symbol cannot be selected.
            self._unless_disconnected("symbol_info")
            if not self.mt5.symbol_select(symbol, True):
                self._unless_disconnected("symbol_select")
                return None
            info = self.mt5.symbol_info(symbol)
            if info is None:  # nothing was sent: refuse rather than guess
                self._unless_disconnected("symbol_info")
        return info

    def unknown_symbol(self, symbol: str) -> str:
        """What to say of a symbol the terminal does not know (with names it may have meant)."""
        return f"symbol {symbol!r} is not known to the terminal{self._did_you_mean(symbol)}"

    def _did_you_mean(self, symbol: str) -> str:
        """``"; did you mean A, B?"`` with names the terminal knows close to ``symbol``, or
        ``""``. One more round trip, only on the way to refusing the order."""
        known = self.mt5.symbols_get()  # every symbol, in the Market Watch or not
        names = close_names(symbol, (info.name for info in known or ()))
        return f"; did you mean {', '.join(names)}?" if names else ""

    def refused(self, what: str) -> OrderOutcome:
        """The order, refused because ``what`` failed before ``order_send``: nothing was sent,
        so it is not an outcome to reconcile. A lost terminal raises ``TerminalDisconnected``
        instead (the order may be sent again once it is back)."""
        return rejected_outcome(f"{self._unless_disconnected(what)}; nothing was sent")

    def _unless_disconnected(self, what: str) -> TerminalError:
        """After ``what`` failed: raise ``TerminalDisconnected`` if the terminal is gone, else
        return the error to report."""
        error = self.failed(what)
        if isinstance(error, TerminalDisconnected):
            raise error
        return error

    def _volume_limits(self, request: dict[str, Any]) -> str:
        """What was asked against what the symbol takes, from the terms remembered before the
        send (so no terminal call), or ``""`` if it has none."""
        symbol = request["symbol"]
        terms = self._terms.get(symbol)
        if terms is None:
            return ""
        return f": {lots(request['volume'])} lots; {terms.describe(symbol)}"

    def send(
        self,
        request: dict[str, Any],
        *,
        done: Literal["FILLED", "DONE"] = "FILLED",
        volume_down: bool = False,
    ) -> OrderOutcome:
        """``order_send(request)``, its answer as an outcome: ``done`` when carried out.

        First its prices are fitted to the symbol's tick size, and its volume (a deal's or a
        pending order's) checked against the symbol's range and step (``fitting``): a volume
        off the step is refused unless ``volume_down``, when it is rounded down (the outcome's
        ``volume_requested`` says so), and one out of range is refused; nothing is sent."""
        symbol: str = request.get("symbol", "")
        terms = self.terms(symbol) if symbol else None
        fitted: list[str] = []
        asked: float | None = None
        if terms is not None:
            request, fitted = fit_prices(request, terms)
            if "volume" in request:
                try:
                    volume = fit_volume(request["volume"], terms, down=volume_down)
                except VolumeRefused as exc:
                    return rejected_outcome(
                        f"{exc}: {terms.describe(symbol)}", code=ErrorCode.INVALID_VOLUME
                    )
                if volume != request["volume"]:
                    asked, request = request["volume"], request | {"volume": volume}
        outcome = self._send(request, done)
        if fitted or asked is not None:
            outcome = msgspec.structs.replace(
                outcome, fitted=fitted or None, volume_requested=asked
            )
        return outcome

    def _send(self, request: dict[str, Any], done: Literal["FILLED", "DONE"]) -> OrderOutcome:
        result = self.mt5.order_send(request)
        if result is None:
            code, message = self.mt5.last_error()
            if code in _IPC_ERRORS:
                self._connected = False
                status: Literal["REJECTED", "UNKNOWN"] = (
                    "UNKNOWN" if code in _IPC_UNCERTAIN else "REJECTED"
                )
                return OrderOutcome(
                    status=status,
                    error_code=ErrorCode.MT5_DISCONNECTED,
                    error_msg=f"terminal connection lost during order_send ({code} {message})",
                )
            return rejected_outcome(f"order_send refused the request: {code} {message}")
        if result.retcode not in _SUCCESS:
            # 10031: the terminal has lost its trade server, so nothing was sent: the same
            # advice as any lost connection (retry shortly), not a broker's refusal.
            offline = result.retcode == _NO_TRADE_SERVER
            reason = f"{result.retcode} {result.comment}"
            if result.retcode == _INVALID_VOLUME:
                reason += self._volume_limits(request)
            code = _RETCODE_ERRORS.get(result.retcode, ErrorCode.MT5_REJECTED)
            return OrderOutcome(
                status="REJECTED",
                error_code=ErrorCode.MT5_DISCONNECTED if offline else code,
                error_msg=f"the terminal rejected the order: {reason}",
                retcode=result.retcode,
                comment=result.comment,
                **terminal_answer(result),
            )
        return OrderOutcome(
            status=done,
            retcode=result.retcode,
            comment=result.comment,
            ticket=result.order,
            order=result.order,
            deal=result.deal,
            volume=result.volume,
            price=result.price,
            **terminal_answer(result),
        )


def filling_constant(asked: Filling | str | None) -> int | None:
    """The ``ORDER_FILLING_*`` value of a request's ``type_filling`` (``None``: not given)."""
    return None if asked is None else Filling(asked).constant


def _filling(info: Any) -> int:
    """The ORDER_FILLING_* mode the symbol allows: FOK, else IOC, else RETURN."""
    if info.trade_exemode < _EXECUTION_MARKET or info.filling_mode & _SYMBOL_FILLING_FOK:
        return _ORDER_FILLING_FOK
    if info.filling_mode & _SYMBOL_FILLING_IOC:
        return _ORDER_FILLING_IOC
    return _ORDER_FILLING_RETURN


def rejected_outcome(message: str, *, code: ErrorCode = ErrorCode.MT5_REJECTED) -> OrderOutcome:
    return OrderOutcome(status="REJECTED", error_code=code, error_msg=message)


def _with_ticket(outcome: OrderOutcome, ticket: int) -> OrderOutcome:
    return msgspec.structs.replace(outcome, ticket=ticket)


def _position(p: Any) -> Position:
    return Position(
        ticket=p.ticket,
        symbol=p.symbol,
        type=Side.BUY if p.type == 0 else Side.SELL,
        volume=p.volume,
        price_open=p.price_open,
        price_current=p.price_current,
        sl=p.sl,
        tp=p.tp,
        profit=p.profit,
        swap=p.swap,
        magic=p.magic,
        comment=p.comment,
        time=p.time,
    )
