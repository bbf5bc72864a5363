"""The terminal operations the worker process runs: one table, read by both sides of the pipe.

Each ``Op`` names an operation, the adapter method that runs it in the worker, and the types of
its argument and result (as msgpack sends them). The parent calls ``worker.call(OPEN, order)``
and gets an ``OrderOutcome`` back, typed; the worker looks the name up in ``OPERATIONS`` to
decode the argument and run the method. A new terminal operation is one ``Op`` here (and the
adapter method it runs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from gtw_server.adapter import (
    CloseOrder,
    FindOrders,
    ListTags,
    OpenOrder,
    OrderOutcome,
    TerminalAdapter,
    TerminalStatus,
)
from gtw_server.commands import CommandDesk, Instruction
from gtw_server.market import MarketReader, Poll, Polled, RatesQuery, Table, TicksQuery
from gtw_server.mt5_reads import Mt5Answer, Mt5Call, call_read
from gtw_server.trades import History, HistoryQuery, OrdersQuery, TradeReader, Watch, Watched
from protocol import Account, Order, Position, SymbolInfo, Tick

__all__ = [
    "ACCOUNT",
    "CLOSE",
    "COMMAND",
    "CONNECT",
    "FIND",
    "HISTORY",
    "LATEST",
    "MT5_READ",
    "OPEN",
    "OPERATIONS",
    "ORDERS",
    "POLL",
    "POSITIONS",
    "RATES",
    "SETTLED",
    "STATUS",
    "SYMBOL",
    "SYMBOLS",
    "TAGS",
    "TICKS",
    "WATCH",
    "Op",
]

A = TypeVar("A")
R = TypeVar("R")


class Op(Generic[A, R]):
    """One operation: ``run(adapter, argument) -> result``, in the worker.

    ``argument`` and ``result`` are the types msgpack decodes them as (``None``: no argument).
    A ``background`` operation (market data) waits behind the others for the worker
    (``gtw_server.lanes``).
    """

    __slots__ = ("argument", "background", "name", "result", "run")

    def __init__(
        self,
        name: str,
        run: Callable[[TerminalAdapter, A], R],
        *,
        argument: Any,
        result: Any,
        background: bool = False,
    ) -> None:
        self.name = name
        self.run = run
        self.argument = argument
        self.result = result
        self.background = background

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


CONNECT: Final[Op[None, TerminalStatus]] = Op(
    "connect", lambda a, _: a.connect(), argument=None, result=TerminalStatus
)
STATUS: Final[Op[None, TerminalStatus]] = Op(
    "status", lambda a, _: a.status(), argument=None, result=TerminalStatus
)
ACCOUNT: Final[Op[None, Account]] = Op(
    "account", lambda a, _: a.account(), argument=None, result=Account
)
POSITIONS: Final[Op[str | None, list[Position]]] = Op(
    "positions", TerminalAdapter.positions, argument=str | None, result=list[Position]
)
OPEN: Final[Op[OpenOrder, OrderOutcome]] = Op(
    "open", TerminalAdapter.open, argument=OpenOrder, result=OrderOutcome
)
CLOSE: Final[Op[CloseOrder, OrderOutcome]] = Op(
    "close", TerminalAdapter.close, argument=CloseOrder, result=OrderOutcome
)
# PLACE, MODIFY_POSITION, MODIFY_ORDER, CANCEL, CLOSE_BY (gtw_server.commands).
COMMAND: Final[Op[Instruction, OrderOutcome]] = Op(
    "command",
    lambda a, instruction: CommandDesk(a).run(instruction),
    argument=Instruction,
    result=OrderOutcome,
)
SETTLED: Final[Op[list[Instruction], list[OrderOutcome | None]]] = Op(
    "settled",
    lambda a, instructions: CommandDesk(a).settled(instructions),
    argument=list[Instruction],
    result=list[OrderOutcome | None],
)
FIND: Final[Op[FindOrders, dict[str, OrderOutcome]]] = Op(
    "find", TerminalAdapter.find, argument=FindOrders, result=dict[str, OrderOutcome]
)
TAGS: Final[Op[ListTags, list[str]]] = Op(
    "tags", TerminalAdapter.tags, argument=ListTags, result=list[str]
)

# Market data (gtw_server.market): behind the orders.
SYMBOLS: Final[Op[str | None, list[SymbolInfo]]] = Op(
    "symbols",
    lambda a, group: MarketReader(a).symbols(group),
    argument=str | None,
    result=list[SymbolInfo],
    background=True,
)
SYMBOL: Final[Op[str, SymbolInfo]] = Op(
    "symbol",
    lambda a, name: MarketReader(a).symbol(name),
    argument=str,
    result=SymbolInfo,
    background=True,
)
LATEST: Final[Op[list[str], dict[str, Tick]]] = Op(
    "latest",
    lambda a, names: MarketReader(a).latest(names),
    argument=list[str],
    result=dict[str, Tick],
    background=True,
)
RATES: Final[Op[RatesQuery, Table]] = Op(
    "rates",
    lambda a, query: MarketReader(a).rates(query),
    argument=RatesQuery,
    result=Table,
    background=True,
)
TICKS: Final[Op[TicksQuery, Table]] = Op(
    "ticks",
    lambda a, query: MarketReader(a).ticks(query),
    argument=TicksQuery,
    result=Table,
    background=True,
)
POLL: Final[Op[Poll, Polled]] = Op(
    "poll",
    lambda a, poll: MarketReader(a).poll(poll),
    argument=Poll,
    result=Polled,
    background=True,
)

# Pending orders and the history (gtw_server.trades): reads, behind the orders too.
ORDERS: Final[Op[OrdersQuery, list[Order]]] = Op(
    "orders",
    lambda a, query: TradeReader(a).orders(query),
    argument=OrdersQuery,
    result=list[Order],
    background=True,
)
HISTORY: Final[Op[HistoryQuery, History]] = Op(
    "history",
    lambda a, query: TradeReader(a).history(query),
    argument=HistoryQuery,
    result=History,
    background=True,
)

# The trade watcher's look (gtw_server.trade_watch), behind the orders.
WATCH: Final[Op[Watch, Watched]] = Op(
    "watch",
    lambda a, query: TradeReader(a).watch(query),
    argument=Watch,
    result=Watched,
    background=True,
)
# MT5_READ (gtw_server.mt5_reads): a read function of the package as a script called it.
MT5_READ: Final[Op[Mt5Call, Mt5Answer]] = Op(
    "mt5_read", call_read, argument=Mt5Call, result=Mt5Answer, background=True
)
OPERATIONS: Final[dict[str, Op[Any, Any]]] = {
    op.name: op
    for op in (
        CONNECT,
        STATUS,
        ACCOUNT,
        POSITIONS,
        OPEN,
        CLOSE,
        COMMAND,
        SETTLED,
        FIND,
        TAGS,
        SYMBOLS,
        SYMBOL,
        LATEST,
        RATES,
        TICKS,
        POLL,
        ORDERS,
        HISTORY,
        WATCH,
        MT5_READ,
    )
}
