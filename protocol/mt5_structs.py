"""The result types of the ``MetaTrader5`` package, as struct sequences.

The package returns CPython struct sequences (tuple subclasses like ``os.stat_result``), not
namedtuples, and code written against it relies on exactly that: indexing and unpacking in field
order, attribute access, ``_asdict()`` (shallow: a nested ``request`` stays a ``TradeRequest``),
``n_fields``, and *no* ``_fields`` or ``_replace``. One mechanism, ``StructSequence``, gives every
type below that behaviour; each type only lists its fields, in the binary's order and with the
Python type the binary returns.

>>> level = BookInfo((1, 1.10015, 10, 10.0))
>>> level
BookInfo(type=1, price=1.10015, volume=10, volume_dbl=10.0)
>>> level.price, level[1], level.n_fields
(1.10015, 1.10015, 4)
>>> kind, price, *_ = level
>>> level._asdict()["volume_dbl"], hasattr(level, "_fields"), hasattr(level, "_replace")
(10.0, False, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, ClassVar, Final, Self, TypeVar

__all__ = [
    "STRUCT_TYPES",
    "AccountInfo",
    "BookInfo",
    "OrderCheckResult",
    "OrderSendResult",
    "StructSequence",
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "build",
    "replaced",
]

S = TypeVar("S", bound="StructSequence")


class _StructSequenceMeta(type):
    """Turns the field annotations of a ``StructSequence`` subclass into read-only properties."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _StructSequenceMeta:
        if not any(isinstance(base, _StructSequenceMeta) for base in bases):
            return super().__new__(mcls, name, bases, namespace, **kwargs)  # the base itself
        fields = tuple(namespace.get("__annotations__", {}))
        namespace["__slots__"] = ()  # no per-instance __dict__, like the C types
        namespace["__match_args__"] = fields
        namespace["n_fields"] = namespace["n_sequence_fields"] = len(fields)
        for index, field in enumerate(fields):
            namespace[field] = property(itemgetter(index), doc=f"{name} field {index}")
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class StructSequence(tuple[Any, ...], metaclass=_StructSequenceMeta):
    """Base of the result types: a tuple whose fields are also read-only attributes.

    The field names are in ``__match_args__`` (as on CPython's own struct sequences), which also
    makes the types usable in ``match`` statements.
    """

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    n_fields: ClassVar[int] = 0
    n_sequence_fields: ClassVar[int] = 0
    n_unnamed_fields: ClassVar[int] = 0

    def __new__(cls, sequence: Iterable[Any], dict: Mapping[str, Any] | None = None) -> Self:
        # ``dict`` is accepted for signature parity with C struct sequences; with no hidden
        # fields there is nothing it could fill.
        values = tuple(sequence)
        if len(values) != cls.n_fields:
            raise TypeError(
                f"{cls.__name__}() takes a {cls.n_fields}-sequence ({len(values)}-sequence given)"
            )
        return super().__new__(cls, values)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(self.__match_args__, self, strict=True)
        )
        return f"{type(self).__name__}({fields})"

    def _asdict(self) -> dict[str, Any]:
        """The fields as a dict, shallow: nested structures are not converted."""
        return dict(zip(self.__match_args__, self, strict=True))


def build(cls: type[S], fields: Mapping[str, Any], /) -> S:
    """Build ``cls`` from a mapping of every field by name (how the simulator fills results).

    A missing field raises ``KeyError``; an extra one ``TypeError``.
    """
    if len(fields) != cls.n_fields:
        extra = sorted(set(fields) - set(cls.__match_args__))
        raise TypeError(f"{cls.__name__} has no field(s) {extra}")
    return cls(map(fields.__getitem__, cls.__match_args__))


def replaced(record: S, /, **changes: Any) -> S:
    """A copy of ``record`` with some fields changed (the types have no ``_replace``, as the
    real ones have none)."""
    return build(type(record), record._asdict() | changes)


class AccountInfo(StructSequence):
    """``account_info()``: the trading account and its money figures."""

    login: int
    trade_mode: int
    leverage: int
    limit_orders: int
    margin_so_mode: int
    trade_allowed: bool
    trade_expert: bool
    margin_mode: int
    currency_digits: int
    fifo_close: bool
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    margin_so_call: float
    margin_so_so: float
    margin_initial: float
    margin_maintenance: float
    assets: float
    liabilities: float
    commission_blocked: float
    name: str
    server: str
    currency: str
    company: str


class TerminalInfo(StructSequence):
    """``terminal_info()``: the terminal's state and settings."""

    community_account: bool
    community_connection: bool
    connected: bool
    dlls_allowed: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    email_enabled: bool
    ftp_enabled: bool
    notifications_enabled: bool
    mqid: bool
    build: int
    maxbars: int
    codepage: int
    ping_last: int
    community_balance: float
    retransmission: float
    company: str
    name: str
    language: str
    path: str
    data_path: str
    commondata_path: str


class SymbolInfo(StructSequence):
    """``symbol_info()`` and ``symbols_get()``: a symbol's specification and quote."""

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


class Tick(StructSequence):
    """``symbol_info_tick()``: the last quote of a symbol."""

    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float


class TradePosition(StructSequence):
    """``positions_get()``: an open position."""

    ticket: int
    time: int
    time_msc: int
    time_update: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str
    external_id: str


class TradeOrder(StructSequence):
    """``orders_get()`` and ``history_orders_get()``: an order, active or historical."""

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


class TradeDeal(StructSequence):
    """``history_deals_get()``: a deal, the execution of an order."""

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


class TradeRequest(StructSequence):
    """The parsed request of ``order_send``/``order_check``, with defaults filled in."""

    action: int
    magic: int
    order: int
    symbol: str
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    deviation: int
    type: int
    type_filling: int
    type_time: int
    expiration: int
    comment: str
    position: int
    position_by: int


class OrderSendResult(StructSequence):
    """``order_send()``: the trade server's answer."""

    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: TradeRequest


class OrderCheckResult(StructSequence):
    """``order_check()``: the verdict and the account as it would be afterwards."""

    retcode: int
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float
    comment: str
    request: TradeRequest


class BookInfo(StructSequence):
    """``market_book_get()``: one level of the depth of market."""

    type: int
    price: float
    volume: int
    volume_dbl: float


# Every structure type the package exports, in the order of its documentation.
STRUCT_TYPES: Final[tuple[type[StructSequence], ...]] = (
    AccountInfo,
    TerminalInfo,
    SymbolInfo,
    Tick,
    TradePosition,
    TradeOrder,
    TradeDeal,
    TradeRequest,
    OrderSendResult,
    OrderCheckResult,
    BookInfo,
)
