"""The messages of wire contract v1, as frozen msgspec Structs.

Requests are commands, named in the imperative (``Open``, ``Close``, ``GetAccount``); they form
one tagged union on ``action``, so decoding and validating a request is a single msgspec call.
Field constraints live in the types below, which is why a bad field is always named in the error.

Every reply, whatever its action and status, is one flat ``Reply``: a parse failure has no
action, and any action can end in any status, so a per-action union could not be decoded in
one step. Absent optional fields are left out of the JSON (``omit_defaults``).
"""

from __future__ import annotations

import typing
from enum import StrEnum
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct

from protocol.market import (
    MAX_SYMBOLS_PER_REQUEST,
    Account,
    Deal,
    Event,
    Order,
    Position,
    Rows,
    Side,
    SymbolInfo,
    Tick,
    TickFlags,
    Timeframe,
)
from protocol.mt5 import MAX_MT5_ARGS, MAX_MT5_KWARGS, READ_FUNCTIONS, Mt5Arg, Mt5Value

__all__ = [
    "ACTIONS",
    "MAX_EVENTS_PER_REQUEST",
    "PROTOCOL_VERSION",
    "Account",
    "AnyRequest",
    "Cancel",
    "Close",
    "CloseBy",
    "Command",
    "Comment",
    "Deviation",
    "Expiration",
    "Filling",
    "GatewayInfo",
    "GetAccount",
    "GetEvents",
    "GetOrder",
    "GetPositions",
    "Halt",
    "Magic",
    "ModifyOrder",
    "ModifyPosition",
    "Mt5Read",
    "Open",
    "PendingType",
    "Ping",
    "Place",
    "Position",
    "Price",
    "Reason",
    "Reply",
    "Request",
    "Resume",
    "Side",
    "Signable",
    "SignedRequest",
    "Status",
    "StopPrice",
    "Symbol",
    "Ticket",
    "Uuid",
    "Volume",
    "VolumeRounding",
    "terminal_answer",
]

PROTOCOL_VERSION: Final = 1
MAX_EVENTS_PER_REQUEST: Final = 1000

# Field types, exported too for tools that check arguments before building a request.
# Identifiers and numbers are bounded so that nothing unreasonable ever reaches the journal or
# the terminal; NaN fails every comparison, and the upper bounds keep infinities out.
# \Z, not $: "$" also matches before a final newline. A pattern's ``description`` is what
# ``validation_message`` says instead of the regex.
Uuid = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+\Z",
        description="of 1-64 letters, digits, '_' or '-'",
    ),
]
Symbol = Annotated[str, Meta(min_length=1, max_length=29)]  # the terminal's symbol limit
Volume = Annotated[float, Meta(gt=0, le=1_000_000)]
Price = Annotated[float, Meta(gt=0, lt=1e12)]
StopPrice = Annotated[float, Meta(ge=0, lt=1e12)]  # 0 means "no level", as in MetaTrader
Deviation = Annotated[int, Meta(ge=0, le=1_000_000)]
Magic = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Ticket = Annotated[int, Meta(gt=0, le=2**63 - 1)]
Comment = Annotated[str, Meta(max_length=64)]
# A HALT's reason is shown in logs, PING replies and the operator's console: no control
# characters (C0, DEL, C1), line or paragraph separators, or bidirectional overrides, which
# could forge, hide or reorder what an operator reads.
Reason = Annotated[
    str,
    Meta(
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]*\Z",
        description="without control characters (no newline, tab, escape or direction override)",
    ),
]
Timestamp = Annotated[float, Meta(ge=0, lt=1e11)]
Signature = Annotated[str, Meta(max_length=256)]
Count = Annotated[int, Meta(gt=0, le=100_000_000)]  # rows asked for; the gateway's limit is lower
StartPos = Annotated[int, Meta(ge=0, le=100_000_000)]
Group = Annotated[str, Meta(min_length=1, max_length=1024)]
ExpiresAt = Annotated[int, Meta(gt=0, lt=10**11)]  # epoch seconds, the terminal's clock
# What the gateway may do with a volume off the symbol's step: round it down (never up).
VolumeRounding = Literal["down"]
# When a pending order lapses: "GTC" (never, the default), "DAY" (at the end of the trading
# day), or a time.
Expiration = Literal["GTC", "DAY"] | ExpiresAt


class PendingType(StrEnum):
    """The pending order types, named as the package's ``ORDER_TYPE_*`` without the prefix."""

    BUY_LIMIT = "BUY_LIMIT"
    SELL_LIMIT = "SELL_LIMIT"
    BUY_STOP = "BUY_STOP"
    SELL_STOP = "SELL_STOP"
    BUY_STOP_LIMIT = "BUY_STOP_LIMIT"
    SELL_STOP_LIMIT = "SELL_STOP_LIMIT"

    @property
    def constant(self) -> int:
        """The package's ``ORDER_TYPE_*`` value (2 to 7)."""
        return _PENDING_CONSTANTS[self]

    @property
    def side(self) -> Side:
        return Side.BUY if self.startswith("BUY") else Side.SELL

    @property
    def stop_limit(self) -> bool:
        return self.endswith("STOP_LIMIT")


_PENDING_CONSTANTS: Final = {kind: 2 + index for index, kind in enumerate(PendingType)}


class Filling(StrEnum):
    """How an order may fill, named as the package's ``ORDER_FILLING_*`` without the prefix:
    all or nothing (``FOK``), what is there now and the rest cancelled (``IOC``), what is there
    now and the rest left as an order (``RETURN``), or as a passive order only (``BOC``)."""

    FOK = "FOK"
    IOC = "IOC"
    RETURN = "RETURN"
    BOC = "BOC"

    @property
    def constant(self) -> int:
        """The package's ``ORDER_FILLING_*`` value (0 to 3)."""
        return _FILLING_CONSTANTS[self]


_FILLING_CONSTANTS: Final = {kind: index for index, kind in enumerate(Filling)}


class Status(StrEnum):
    OK = "OK"
    FILLED = "FILLED"
    REJECTED = "REJECTED"
    PENDING = "PENDING"


class Request(
    Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="action",
    omit_defaults=True,
):
    """Fields every request carries. ``uuid`` is the idempotency key of every signed one."""

    uuid: Uuid
    timestamp: Timestamp
    v: int = PROTOCOL_VERSION

    @property
    def action(self) -> str:
        tag = type(self).__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    def problem(self) -> str | None:
        """Why the fields, each valid, make no request together, or ``None`` (a request whose
        fields depend on each other says so; the gateway refuses it with INVALID_REQUEST)."""
        return None


class Ping(Request, tag="PING", frozen=True):
    """Ask whether the gateway and its terminal are alive.

    ``risk_signature`` (an extension of v1, optional) asks the gateway to check this node's
    secret as well: the reply's ``authenticated`` says whether it verified."""

    risk_signature: Signature | None = None


class Open(Request, tag="OPEN", frozen=True):
    """Open a position with a market deal, e.g. ``Open(uuid=..., timestamp=...,
    symbol="EURUSD", type=Side.BUY, volume=0.1, sl=1.05)``."""

    symbol: Symbol
    type: Side
    volume: Volume
    price: Price | None = None
    sl: StopPrice | None = None
    tp: StopPrice | None = None
    deviation: Deviation | None = None
    magic: Magic | None = None
    comment: Comment | None = None
    type_filling: Filling | None = None
    volume_rounding: VolumeRounding | None = None
    risk_signature: Signature | None = None


class Close(Request, tag="CLOSE", frozen=True):
    """Close a position, wholly or (with ``volume``) in part. The closing deal carries
    ``magic`` (the position's when not given) and ``comment``."""

    ticket: Ticket
    volume: Volume | None = None
    deviation: Deviation | None = None
    magic: Magic | None = None
    comment: Comment | None = None
    type_filling: Filling | None = None
    volume_rounding: VolumeRounding | None = None
    risk_signature: Signature | None = None


class Halt(Request, tag="HALT", frozen=True):
    """Stop new OPEN orders at the gateway (the kill switch); CLOSE still works.

    An extension of PROTOCOL.md v1, signed like an order (every order field empty)."""

    reason: Reason | None = None
    risk_signature: Signature | None = None


class Resume(Request, tag="RESUME", frozen=True):
    """Lift a HALT; signed like HALT."""

    risk_signature: Signature | None = None


class Place(Request, tag="PLACE", frozen=True):
    """Place a pending order, e.g. ``Place(uuid=..., timestamp=..., symbol="EURUSD",
    type=PendingType.BUY_LIMIT, volume=0.1, price=1.0800, sl=1.0750)``.

    A limit order waits for a better price than the market's (a buy below the ask), a stop
    order for a worse one (a buy above it); a stop-limit order places, at ``price``, a limit
    order at ``stoplimit``. ``expiration`` is ``"GTC"`` unless said."""

    symbol: Symbol
    type: PendingType
    volume: Volume
    price: Price
    stoplimit: Price | None = None
    sl: StopPrice | None = None
    tp: StopPrice | None = None
    expiration: Expiration | None = None
    magic: Magic | None = None
    comment: Comment | None = None
    type_filling: Filling | None = None
    volume_rounding: VolumeRounding | None = None
    risk_signature: Signature | None = None

    def problem(self) -> str | None:
        """Why the fields make no order, or ``None``."""
        kind = PendingType(self.type)  # a plain "BUY_LIMIT" as well
        if kind.stop_limit and self.stoplimit is None:
            return f"a {kind} order needs stoplimit: the price of the limit order it places"
        if not kind.stop_limit and self.stoplimit is not None:
            return f"stoplimit belongs to BUY_STOP_LIMIT and SELL_STOP_LIMIT, not {kind}"
        return None


class ModifyPosition(Request, tag="MODIFY_POSITION", frozen=True):
    """Move an open position's stop loss and take profit (``TRADE_ACTION_SLTP``). A level left
    out stays as it is; 0 removes it."""

    ticket: Ticket
    sl: StopPrice | None = None
    tp: StopPrice | None = None
    risk_signature: Signature | None = None

    def problem(self) -> str | None:
        """Why the fields change nothing, or ``None``."""
        if self.sl is None and self.tp is None:
            return "say what to change: sl, tp or both (0 removes a level)"
        return None


class ModifyOrder(Request, tag="MODIFY_ORDER", frozen=True):
    """Change a pending order's price, stop-limit price, stops or expiration
    (``TRADE_ACTION_MODIFY``); what is left out stays as it is."""

    ticket: Ticket
    price: Price | None = None
    stoplimit: Price | None = None
    sl: StopPrice | None = None
    tp: StopPrice | None = None
    expiration: Expiration | None = None
    risk_signature: Signature | None = None

    def problem(self) -> str | None:
        """Why the fields change nothing, or ``None``."""
        fields = (self.price, self.stoplimit, self.sl, self.tp, self.expiration)
        if all(value is None for value in fields):
            return "say what to change: price, stoplimit, sl, tp or expiration"
        return None


class Cancel(Request, tag="CANCEL", frozen=True):
    """Delete a pending order (``TRADE_ACTION_REMOVE``). Always allowed, halted or not."""

    ticket: Ticket
    risk_signature: Signature | None = None


class CloseBy(Request, tag="CLOSE_BY", frozen=True):
    """Close a position by an opposite one of the same symbol (hedging accounts): both shrink
    by the smaller volume, and only one spread is paid."""

    ticket: Ticket
    by: Ticket
    risk_signature: Signature | None = None

    def problem(self) -> str | None:
        """Why the fields make no request, or ``None``."""
        if self.ticket == self.by:
            return f"a position cannot be closed by itself (ticket and by are both {self.by})"
        return None


class GetAccount(Request, tag="GET_ACCOUNT", frozen=True):
    """Ask for the trading account's balance, equity and margin: as the gateway's trade
    watcher last read it (the reply's ``age_ms`` says how long ago), if it read it after
    ``after`` (the gateway's clock: the ``timestamp`` of the reply to the client's last
    order, so that it sees its own orders); else, or with ``fresh``, read from the terminal
    now (within the gateway's ``read_timeout_ms``; past it, the last reading with its age)."""

    fresh: bool = False
    after: Timestamp | None = None


class GetPositions(Request, tag="GET_POSITIONS", frozen=True):
    """Ask for the open positions, optionally of one symbol; ``fresh`` and ``after`` as
    GET_ACCOUNT's."""

    symbol: Symbol | None = None
    fresh: bool = False
    after: Timestamp | None = None


class GetOrder(Request, tag="GET_ORDER", frozen=True):
    """Ask for the outcome of an earlier OPEN or CLOSE, by its uuid."""

    order_uuid: Uuid


class GetSymbols(Request, tag="GET_SYMBOLS", frozen=True):
    """Ask for the specifications of the terminal's symbols, all (in the Market Watch or not)
    or those ``group`` selects, as ``symbols_get`` reads it: comma-separated masks with ``*``,
    and ``!`` to exclude (``"*,!*USD*"``)."""

    group: Group | None = None


class GetSymbol(Request, tag="GET_SYMBOL", frozen=True):
    """Ask for one symbol's full specification (selected in the Market Watch first)."""

    symbol: Symbol


class GetTick(Request, tag="GET_TICK", frozen=True):
    """Ask for the latest tick of one or several symbols."""

    symbols: Annotated[list[Symbol], Meta(min_length=1, max_length=MAX_SYMBOLS_PER_REQUEST)]


class GetRates(Request, tag="GET_RATES", frozen=True):
    """Ask for bars, as ``copy_rates_*`` gives them, in one of three forms:
    ``count`` bars ending ``start_pos`` bars before the current one (0: the current bar
    included), the ``count`` bars opened at or before ``date_from``, or the bars opened from
    ``date_from`` to ``date_to``. Dates are epoch seconds, in the terminal's clock."""

    symbol: Symbol
    timeframe: Timeframe
    count: Count | None = None
    start_pos: StartPos | None = None
    date_from: Timestamp | None = None
    date_to: Timestamp | None = None

    def problem(self) -> str | None:
        """Why the fields make no request (none of the three forms), or ``None``."""
        if self.date_from is None:
            if self.date_to is not None:
                return "date_to needs date_from (the bars opened from date_from to date_to)"
            if self.count is None:
                return (
                    "say which bars: count (with start_pos), date_from and count, or "
                    "date_from and date_to"
                )
            return None
        if self.start_pos is not None:
            return "start_pos counts back from the current bar; it goes with count, not a date"
        return _one_of_count_or_date_to(self.count, self.date_from, self.date_to)


class GetTicks(Request, tag="GET_TICKS", frozen=True):
    """Ask for tick history, as ``copy_ticks_*`` gives it: ``count`` ticks from ``date_from``
    on, or the ticks from ``date_from`` to ``date_to``; ``flags`` as ``COPY_TICKS_*``."""

    symbol: Symbol
    date_from: Timestamp
    count: Count | None = None
    date_to: Timestamp | None = None
    flags: TickFlags = TickFlags.ALL

    def problem(self) -> str | None:
        """Why the fields make no request, or ``None``."""
        return _one_of_count_or_date_to(self.count, self.date_from, self.date_to)


def _one_of_count_or_date_to(
    count: int | None, date_from: float, date_to: float | None
) -> str | None:
    if (count is None) == (date_to is None):
        return "give either count or date_to with date_from, not both, not neither"
    if date_to is not None and date_to < date_from:
        return f"the range runs backwards: date_to {date_to!r} is before date_from {date_from!r}"
    return None


class GetOrders(Request, tag="GET_ORDERS", frozen=True):
    """Ask for the pending orders: all, or those of one ``symbol``, of a ``group`` (masks as
    GET_SYMBOLS's), or the one with ``ticket``, as ``orders_get`` takes them (one filter at
    most)."""

    symbol: Symbol | None = None
    group: Group | None = None
    ticket: Ticket | None = None

    def problem(self) -> str | None:
        """Why the fields make no request, or ``None``."""
        given = [name for name in ("symbol", "group", "ticket") if getattr(self, name) is not None]
        if len(given) > 1:
            return f"give one of symbol, group and ticket at most, not {' and '.join(given)}"
        return None


class HistoryKind(StrEnum):
    DEALS = "DEALS"
    ORDERS = "ORDERS"


class GetHistory(Request, tag="GET_HISTORY", frozen=True):
    """Ask for the history's deals (or, with ``kind`` ``ORDERS``, its orders), as
    ``history_deals_get`` and ``history_orders_get`` take them: from ``date_from`` to
    ``date_to`` (epoch seconds, the terminal's clock), optionally of a ``group`` or of one
    ``symbol`` (resolved to the broker's name, as an OPEN's); or every one of a ``position``;
    or by ``ticket`` (an order's: its deals, or itself)."""

    kind: HistoryKind = HistoryKind.DEALS
    date_from: Timestamp | None = None
    date_to: Timestamp | None = None
    group: Group | None = None
    ticket: Ticket | None = None
    position: Ticket | None = None
    symbol: Symbol | None = None

    def problem(self) -> str | None:
        """Why the fields make no request, or ``None``."""
        dated = self.date_from is not None or self.date_to is not None
        given = [name for name in ("ticket", "position") if getattr(self, name) is not None]
        if dated:
            given.insert(0, "a date range")
        if self.group is not None and self.symbol is not None:
            return "give symbol or group, not both"
        if self.symbol is not None and (
            "*" in self.symbol or "," in self.symbol or self.symbol.startswith("!")
        ):
            return f"symbol {self.symbol!r} is a mask, not one symbol: give it as group"
        for name in ("group", "symbol"):
            if getattr(self, name) is not None and not dated:
                return f"{name} selects within a date range: give date_from and date_to with it"
        if len(given) != 1:
            return (
                "give one of: date_from and date_to (with group or symbol, optionally), ticket, "
                "position" + (f"; not {' and '.join(given)}" if given else "")
            )
        if dated and (self.date_from is None or self.date_to is None):
            return "a date range needs both date_from and date_to"
        if (
            self.date_from is not None
            and self.date_to is not None
            and self.date_to < self.date_from
        ):
            return (
                f"the range runs backwards: date_to {self.date_to!r} is before date_from "
                f"{self.date_from!r}"
            )
        return None


class GetEvents(Request, tag="GET_EVENTS", frozen=True):
    """Ask for the trade events kept after sequence number ``since`` (0: from the oldest
    kept), at most ``limit`` of them, oldest first. The reply's ``first_seq`` and
    ``last_seq`` are the oldest and newest kept, and ``log`` the id of the log they count in
    (a new log starts its count again)."""

    since: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    limit: Annotated[int, Meta(gt=0, le=MAX_EVENTS_PER_REQUEST)] = MAX_EVENTS_PER_REQUEST


class Mt5Read(Request, tag="MT5_READ", frozen=True):
    """Call one read function of the ``MetaTrader5`` package in the terminal, as a script
    would (``protocol.mt5``): ``function`` one of ``READ_FUNCTIONS``, with these positional
    ``args`` and keyword ``kwargs`` (dates as epoch seconds). The reply's ``mt5`` says what it
    returned and ``last_error()`` after it; a numpy array comes as GET_RATES's rows do."""

    function: Annotated[str, Meta(min_length=1, max_length=64)]
    args: Annotated[list[Mt5Arg], Meta(max_length=MAX_MT5_ARGS)] = msgspec.field(
        default_factory=list
    )
    kwargs: Annotated[dict[str, Mt5Arg], Meta(max_length=MAX_MT5_KWARGS)] = msgspec.field(
        default_factory=dict
    )

    def problem(self) -> str | None:
        """Why this is no read of the package, or ``None``."""
        if self.function not in READ_FUNCTIONS:
            return (
                f"{self.function!r} is not a read function of the MetaTrader5 package; one of "
                f"{', '.join(sorted(READ_FUNCTIONS))} (orders go as signed commands)"
            )
        return None


MarketRequest = GetSymbols | GetSymbol | GetTick | GetRates | GetTicks  # read-only, unsigned
TradeRead = GetOrders | GetHistory  # read-only, unsigned, answered by the terminal
Read = MarketRequest | TradeRead | Mt5Read
# Journaled by uuid, signed, and carried out in the terminal.
Command = Open | Close | Place | ModifyPosition | ModifyOrder | Cancel | CloseBy
SignedRequest = Command | Halt | Resume  # journaled by uuid, signature required
Signable = SignedRequest | Ping  # what a risk signature can cover
AnyRequest = (
    Ping
    | Open
    | Close
    | Place
    | ModifyPosition
    | ModifyOrder
    | Cancel
    | CloseBy
    | Halt
    | Resume
    | GetAccount
    | GetPositions
    | GetOrder
    | GetSymbols
    | GetSymbol
    | GetTick
    | GetRates
    | GetTicks
    | GetOrders
    | GetHistory
    | GetEvents
    | Mt5Read
)

ACTIONS: Final[frozenset[str]] = frozenset(
    cls.__struct_config__.tag for cls in typing.get_args(AnyRequest)
)


class GatewayInfo(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a PING reply says about the gateway itself."""

    version: str
    terminal: str  # "SIM" or "LIVE"
    signature_validation: bool
    halted: bool = False
    halt_reason: str | None = None
    warnings: list[str] = msgspec.field(default_factory=list)
    # The trade server's clock (docs/PROTOCOL.md, "Times"): its offset from UTC now, in
    # seconds (7200: UTC+2; absent until known); the zone it keeps, when the operator named
    # one ([gateway] server_timezone); else each offset learned from the terminal's quotes,
    # with the UTC second it was first seen ([[utc_s, offset_s], ...], oldest first).
    server_offset_s: int | None = None
    server_timezone: str | None = None
    server_offsets: list[tuple[int, int]] | None = None


class Reply(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Any reply. ``uuid`` and ``action`` echo the request (``None`` when it was unreadable)."""

    uuid: str | None
    action: str | None
    status: Status
    timestamp: float
    error_code: str | None = None
    error_msg: str | None = None
    retcode: int | None = None
    comment: str | None = None
    duplicate: bool = False
    # PING
    mt5_connected: bool | None = None
    gateway: GatewayInfo | None = None
    # PING with a risk_signature: whether it verified; if not, why (an ErrorCode) in
    # auth_error, and a sentence in error_msg
    authenticated: bool | None = None
    auth_error: str | None = None
    # OPEN, CLOSE and the other commands, and GET_ORDER's copy of them (PLACE, MODIFY_ORDER,
    # CANCEL: ``order`` is the pending order's ticket)
    ticket: int | None = None
    order: int | None = None
    deal: int | None = None
    volume: float | None = None
    price: float | None = None
    # ... and the rest of the terminal's answer to order_send (its OrderSendResult), when it
    # gave one: its quote (at a requote: the prices it offers), its request counter, and the
    # trade server's own code
    bid: float | None = None
    ask: float | None = None
    request_id: int | None = None
    retcode_external: int | None = None
    # OPEN, CLOSE, PLACE with volume_rounding "down": the volume asked for, when the gateway
    # rounded it down to the symbol's step (``volume`` is what was traded)
    volume_requested: float | None = None
    # OPEN, PLACE: the broker's name of the symbol, when the request's was resolved to it
    # (``EURUSD.m`` for ``EURUSD``; docs/PROTOCOL.md, "Symbol names")
    symbol: str | None = None
    # HALT, RESUME
    halted: bool | None = None
    # GET_ORDER
    order_uuid: str | None = None
    order_action: str | None = None
    # GET_ACCOUNT, GET_POSITIONS; how old the reading is (milliseconds)
    account: Account | None = None
    positions: list[Position] | None = None
    age_ms: float | None = None
    # GET_SYMBOLS, GET_SYMBOL, GET_TICK (by symbol)
    symbols: list[SymbolInfo] | None = None
    symbol_info: SymbolInfo | None = None
    ticks: dict[str, Tick] | None = None
    # GET_RATES, GET_TICKS: the body's header; its bytes are the reply's next frame
    rows: Rows | None = None
    # GET_ORDERS, GET_HISTORY
    orders: list[Order] | None = None
    deals: list[Deal] | None = None
    # MT5_READ (its array, if any, as GET_RATES's: ``rows`` and the next frame)
    mt5: Mt5Value | None = None
    # GET_EVENTS
    events: list[Event] | None = None
    log: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None


def terminal_answer(result: typing.Any) -> dict[str, typing.Any]:
    """The part of the terminal's answer to ``order_send`` that ``Reply`` carries besides the
    retcode, comment and fill, by name, from anything with those attributes (an
    ``OrderSendResult``, a ``Reply``, the gateway's outcome)."""
    return {
        "bid": result.bid,
        "ask": result.ask,
        "request_id": result.request_id,
        "retcode_external": result.retcode_external,
    }
