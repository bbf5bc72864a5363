"""The terminal's data on the wire: symbols, ticks, bars, pending orders and the history, the
account and its positions, and the events the gateway publishes.

The shapes are the ``MetaTrader5`` package's own, so a trader's code carries over: ``SymbolInfo``
has every field of the package's ``SymbolInfo`` in its order (docs/MT5_API.md), ``Tick`` those
of its ``Tick``, and bars and tick history travel as the bytes of the numpy structured arrays
``copy_rates_*`` and ``copy_ticks_*`` return (``RATES_DTYPE``, ``TICKS_DTYPE``: packed, 60 bytes a
row), in a frame of their own after the JSON reply, described by its ``rows`` header. Times are
the terminal's: epoch seconds (``time_msc``: milliseconds) in the trade server's clock.

Events (docs/PROTOCOL.md, "Events") are two frames on the gateway's PUB socket: the topic
(``tick.EURUSD;``, ``bar.EURUSD.M1;``, ``state;``) and one JSON ``Event``. The ``;`` ends every
topic, so a subscription to ``tick.EURUSD;`` is not also one to ``tick.EURUSD.m;`` (ZeroMQ
matches prefixes).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "BRIDGE_FIELDS",
    "MAX_SYMBOLS_PER_REQUEST",
    "RATES_DTYPE",
    "TICKS_DTYPE",
    "Account",
    "Bar",
    "Deal",
    "Event",
    "Order",
    "Position",
    "Rows",
    "Side",
    "SymbolInfo",
    "Tick",
    "TickFlags",
    "Timeframe",
    "bar_topic",
    "decode_event",
    "parse_topic",
    "state_topic",
    "tick_topic",
    "trade_topic",
    "wire_fields",
]

MAX_SYMBOLS_PER_REQUEST: Final = 64  # GET_TICK's symbols

# The package's numpy dtypes (docs/MT5_API.md section 1), as (name, format) pairs: the wire
# needs no numpy, and a client rebuilds the array with ``numpy.dtype(RATES_DTYPE)``.
RATES_DTYPE: Final[list[tuple[str, str]]] = [
    ("time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("tick_volume", "<u8"),
    ("spread", "<i4"),
    ("real_volume", "<u8"),
]
TICKS_DTYPE: Final[list[tuple[str, str]]] = [
    ("time", "<i8"),
    ("bid", "<f8"),
    ("ask", "<f8"),
    ("last", "<f8"),
    ("volume", "<u8"),
    ("time_msc", "<i8"),
    ("flags", "<u4"),
    ("volume_real", "<f8"),
]


_TIMEFRAME_CONSTANTS: Final = {
    "M1": 1, "M2": 2, "M3": 3, "M4": 4, "M5": 5, "M6": 6, "M10": 10, "M12": 12, "M15": 15,
    "M20": 20, "M30": 30, "H1": 0x4001, "H2": 0x4002, "H3": 0x4003, "H4": 0x4004,
    "H6": 0x4006, "H8": 0x4008, "H12": 0x400C, "D1": 0x4018, "W1": 0x8001, "MN1": 0xC001,
}  # fmt: skip
_TIMEFRAME_NAMES: Final = {value: name for name, value in _TIMEFRAME_CONSTANTS.items()}


class Timeframe(StrEnum):
    """A bar's length, by its name on the wire (``"M1"``); ``.constant`` is its
    ``TIMEFRAME_*`` value in the package."""

    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    M4 = "M4"
    M5 = "M5"
    M6 = "M6"
    M10 = "M10"
    M12 = "M12"
    M15 = "M15"
    M20 = "M20"
    M30 = "M30"
    H1 = "H1"
    H2 = "H2"
    H3 = "H3"
    H4 = "H4"
    H6 = "H6"
    H8 = "H8"
    H12 = "H12"
    D1 = "D1"
    W1 = "W1"
    MN1 = "MN1"

    @property
    def constant(self) -> int:
        return _TIMEFRAME_CONSTANTS[self.value]

    @classmethod
    def of(cls, value: str | int) -> Timeframe:
        """``"M1"``, ``"m1"``, ``"TIMEFRAME_M1"`` or the constant's value (``1``);
        ``ValueError`` naming the choices for anything else.

        >>> Timeframe.of(16385), Timeframe.of("timeframe_m5")
        (<Timeframe.H1: 'H1'>, <Timeframe.M5: 'M5'>)
        """
        name: str | None = None
        if isinstance(value, str):
            name = value.upper().removeprefix("TIMEFRAME_")
        elif isinstance(value, int) and not isinstance(value, bool):
            name = _TIMEFRAME_NAMES.get(value)
        if name in _TIMEFRAME_CONSTANTS:
            return cls(name)
        raise ValueError(
            f"unknown timeframe {value!r}; expected one of {', '.join(cls)} "
            "(or a TIMEFRAME_* constant)"
        )


class TickFlags(StrEnum):
    """Which ticks ``copy_ticks_*`` gives (``COPY_TICKS_ALL``, ``_INFO``, ``_TRADE``)."""

    ALL = "ALL"
    INFO = "INFO"
    TRADE = "TRADE"


class Rows(Struct, frozen=True, kw_only=True):
    """The header of a binary body: ``rows`` rows of ``dtype`` (packed), in the next frame."""

    dtype: list[tuple[str, str]]
    rows: Annotated[int, Meta(ge=0)]


# Fields a record has only through the Bridge, never on the wire (docs/PROTOCOL.md, "Times").
BRIDGE_FIELDS: Final = frozenset({"server_offset_s"})


def wire_fields(kind: type[Struct]) -> list[str]:
    """The fields of a record type as the wire has them, in order: for ``Order`` and ``Deal``
    the package's, for ``Tick`` and ``Bar`` theirs and the symbol (the Bridge's are left out).

    >>> wire_fields(Tick)[-2:]
    ['volume_real', 'symbol']
    """
    return [name for name in kind.__struct_fields__ if name not in BRIDGE_FIELDS]


class Tick(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A symbol's tick, with the fields of the package's ``Tick`` (and its ``symbol`` after
    them, which the package's lacks)."""

    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float
    symbol: str = ""
    # Through the Bridge only, never on the wire: its times are UTC there, and this is the
    # trade server's offset they were converted by (server time = time + server_offset_s).
    server_offset_s: int | None = None


class Bar(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One bar, with the fields of a row of ``copy_rates_*`` (``time``: when it opened), and
    its symbol and timeframe."""

    time: int
    open: float
    high: float
    low: float
    close: float
    tick_volume: int
    spread: int
    real_volume: int
    symbol: str = ""
    timeframe: str = ""
    # Through the Bridge only, never on the wire: its times are UTC there, and this is the
    # trade server's offset they were converted by (server time = time + server_offset_s).
    server_offset_s: int | None = None


class SymbolInfo(Struct, frozen=True, kw_only=True):
    """A symbol's specification and quote: every field of the package's ``SymbolInfo``, in its
    order (docs/MT5_API.md). Trading sessions are not among them: the package does not give
    them."""

    custom: bool
    chart_mode: int
    select: bool
    visible: bool
    session_deals: int
    session_buy_orders: int
    session_sell_orders: int
    volume: int
    volumehigh: int
    volumelow: int
    time: int
    digits: int
    spread: int
    spread_float: bool
    ticks_bookdepth: int
    trade_calc_mode: int
    trade_mode: int
    start_time: int
    expiration_time: int
    trade_stops_level: int
    trade_freeze_level: int
    trade_exemode: int
    swap_mode: int
    swap_rollover3days: int
    margin_hedged_use_leg: bool
    expiration_mode: int
    filling_mode: int
    order_mode: int
    order_gtc_mode: int
    option_mode: int
    option_right: int
    bid: float
    bidhigh: float
    bidlow: float
    ask: float
    askhigh: float
    asklow: float
    last: float
    lasthigh: float
    lastlow: float
    volume_real: float
    volumehigh_real: float
    volumelow_real: float
    option_strike: float
    point: float
    trade_tick_value: float
    trade_tick_value_profit: float
    trade_tick_value_loss: float
    trade_tick_size: float
    trade_contract_size: float
    trade_accrued_interest: float
    trade_face_value: float
    trade_liquidity_rate: float
    volume_min: float
    volume_max: float
    volume_step: float
    volume_limit: float
    swap_long: float
    swap_short: float
    margin_initial: float
    margin_maintenance: float
    session_volume: float
    session_turnover: float
    session_interest: float
    session_buy_orders_volume: float
    session_sell_orders_volume: float
    session_open: float
    session_close: float
    session_aw: float
    session_price_settlement: float
    session_price_limit_min: float
    session_price_limit_max: float
    margin_hedged: float
    price_change: float
    price_volatility: float
    price_theoretical: float
    price_greeks_delta: float
    price_greeks_theta: float
    price_greeks_gamma: float
    price_greeks_vega: float
    price_greeks_rho: float
    price_greeks_omega: float
    price_sensitivity: float
    basis: str
    category: str
    currency_base: str
    currency_profit: str
    currency_margin: str
    bank: str
    description: str
    exchange: str
    formula: str
    isin: str
    name: str
    page: str
    path: str


class Order(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A pending order (or, from the history, any order), with every field of the package's
    ``TradeOrder`` in its order (docs/MT5_API.md). ``type``, ``state``, ``reason`` and the like
    are the package's ``ORDER_*`` values."""

    ticket: int
    time_setup: int
    time_setup_msc: int
    time_done: int
    time_done_msc: int
    time_expiration: int
    type: int
    type_time: int
    type_filling: int
    state: int
    magic: int
    position_id: int
    position_by_id: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    price_stoplimit: float
    symbol: str
    comment: str
    external_id: str
    # Through the Bridge only, never on the wire: its times are UTC there, and this is the
    # trade server's offset they were converted by (server time = time + server_offset_s).
    server_offset_s: int | None = None


class Deal(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A deal of the history, with every field of the package's ``TradeDeal`` in its order.
    ``reason`` is a ``DEAL_REASON_*`` value (0 client, 3 expert, 4 SL, 5 TP, 6 stop-out...)."""

    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str
    # Through the Bridge only, never on the wire: its times are UTC there, and this is the
    # trade server's offset they were converted by (server time = time + server_offset_s).
    server_offset_s: int | None = None


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Account(Struct, frozen=True, kw_only=True):
    """The trading account, as GET_ACCOUNT reports it."""

    login: int
    server: str
    currency: str
    leverage: int
    balance: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    profit: float
    trade_mode: str  # "DEMO", "CONTEST" or "REAL"
    trade_allowed: bool
    credit: float = 0.0
    name: str = ""
    company: str = ""
    margin_mode: str = "HEDGING"  # "HEDGING", "NETTING" or "EXCHANGE"


class Position(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An open position, as GET_POSITIONS reports it."""

    ticket: int
    symbol: str
    type: Side
    volume: float
    price_open: float
    price_current: float
    sl: float
    tp: float
    profit: float
    swap: float
    magic: int
    comment: str
    time: int
    # Through the Bridge only, never on the wire: its times are UTC there, and this is the
    # trade server's offset they were converted by (server time = time + server_offset_s).
    server_offset_s: int | None = None


class Event(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One message on the event socket (its second frame; the first is the topic).

    ``run`` names the gateway's run (a new one at each start) and ``seq`` counts the messages of
    this topic in it from 1, so a subscriber sees a gap (a seq skipped) or a restart (another
    run). ``kind`` says which of the other fields is set: ``tick`` (``symbol``, ``tick``),
    ``bar`` (``symbol``, ``timeframe``, ``bar``: a bar that has just closed) or ``state``
    (``state``: ``TERMINAL_LOST``, ``TERMINAL_BACK``, ``HALTED``, ``RESUMED``, ``STARTED``,
    ``STOPPING``; ``detail``).

    Trade events (topic ``trade;``) are kept by the gateway, and their ``seq`` is the event
    log's: gap-free, and not reset by a restart (``log`` names the log it counts in). ``kind``
    is ``deal`` (``deal``, ``symbol``; ``uuid`` when the bridge sent its order), ``order``
    (``order``, ``symbol``, ``change``: ``PLACED``, ``MODIFIED``, ``TRIGGERED``, ``FILLED``,
    ``CANCELLED``, ``EXPIRED``, ``REJECTED``; ``uuid`` likewise) or ``account``
    (``account``).
    """

    run: str
    seq: int
    kind: str
    time: float  # when the gateway published it (epoch seconds, its clock)
    symbol: str | None = None
    timeframe: str | None = None
    tick: Tick | None = None
    bar: Bar | None = None
    state: str | None = None
    detail: str | None = None
    code: str | None = None
    # trade events
    log: str | None = None
    deal: Deal | None = None
    order: Order | None = None
    account: Account | None = None
    change: str | None = None
    uuid: str | None = None


def tick_topic(symbol: str) -> bytes:
    return f"tick.{symbol};".encode()


def bar_topic(symbol: str, timeframe: str) -> bytes:
    return f"bar.{symbol}.{timeframe};".encode()


def state_topic() -> bytes:
    return b"state;"


def trade_topic() -> bytes:
    return b"trade;"


def parse_topic(topic: bytes) -> tuple[str, str | None, str | None] | None:
    """``(kind, symbol, timeframe)`` of a whole topic, or ``None`` when it is not one.

    >>> parse_topic(b"bar.EURUSD.m.M5;")
    ('bar', 'EURUSD.m', 'M5')
    >>> parse_topic(b"tick.") is None
    True
    """
    try:
        text = topic.decode()
    except UnicodeDecodeError:
        return None
    if not text.endswith(";"):
        return None
    kind, _, rest = text[:-1].partition(".")
    if kind in ("state", "trade") and not rest:
        return (kind, None, None)
    if kind == "tick" and 0 < len(rest) <= 29:
        return ("tick", rest, None)
    if kind == "bar":
        symbol, _, frame = rest.rpartition(".")
        if 0 < len(symbol) <= 29 and frame in _TIMEFRAME_CONSTANTS:
            return ("bar", symbol, frame)
    return None


_event_decoder: Final = msgspec.json.Decoder(Event)


def decode_event(data: bytes) -> Event:
    """An event frame; raises ``msgspec.DecodeError`` when it is not one."""
    return _event_decoder.decode(data)
