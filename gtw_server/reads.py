"""Answering the read-only requests: market data (GET_SYMBOLS, GET_SYMBOL, GET_TICK, GET_RATES,
GET_TICKS), pending orders (GET_ORDERS), the history (GET_HISTORY), and any read function of
the ``MetaTrader5`` package as a script calls it (MT5_READ, ``gtw_server.mt5_reads``).

They change no order or position (MT5_READ's ``symbol_select`` and ``market_book_*`` change
the terminal's Market Watch and depth subscriptions), so they are unsigned (CURVE and its
allow-list guard them, as every request) and counted among the queries, which may hold at
most a share of the queue. A request
whose fields make no question (``problem()``), or that asks for more than ``max_rows`` rows, is
refused in place, before the terminal; the terminal then answers in the worker's background
lane, behind every order (``gtw_server.lanes``). Bars and ticks go back as ``WithBody``: the
JSON reply says how many rows of which dtype (``rows``), and the next frame holds them.
"""

from __future__ import annotations

from typing import NamedTuple

from loguru import logger

from gtw_server.errors import TerminalError, TerminalRefused
from gtw_server.market import RatesQuery, TicksQuery
from gtw_server.mt5_reads import Mt5Call, bound_problem
from gtw_server.operations import (
    HISTORY,
    LATEST,
    MT5_READ,
    ORDERS,
    RATES,
    SYMBOL,
    SYMBOLS,
    TICKS,
)
from gtw_server.replies import ok, rejected, terminal_unanswered
from gtw_server.trades import HistoryQuery, OrdersQuery
from gtw_server.worker import TerminalWorker
from protocol import (
    RATES_DTYPE,
    TICKS_DTYPE,
    ErrorCode,
    GetHistory,
    GetOrders,
    GetRates,
    GetSymbol,
    GetSymbols,
    GetTick,
    GetTicks,
    Mt5Read,
    Read,
    Reply,
    Rows,
)

__all__ = ["Reads", "WithBody"]


class WithBody(NamedTuple):
    """A reply and the frame that follows it (the rows its ``rows`` header describes)."""

    reply: Reply
    body: bytes


class Reads:
    """Answers the read-only requests through the terminal worker."""

    def __init__(self, worker: TerminalWorker, *, max_rows: int) -> None:
        self._worker = worker
        self.max_rows = max_rows

    def refusal(self, request: Read) -> Reply | None:
        """The refusal of a request that cannot be asked as it is, or ``None``."""
        problem = request.problem()
        count = request.count if isinstance(request, GetRates | GetTicks) else None
        if problem is not None:
            return rejected(request.uuid, request.action, ErrorCode.INVALID_REQUEST, problem)
        if isinstance(request, Mt5Read) and (
            too_large := bound_problem(request.function, list(request.args), self.max_rows)
        ):
            return rejected(
                request.uuid, request.action, ErrorCode.TOO_LARGE, f"{too_large}; ask in parts"
            )
        if count is not None and count > self.max_rows:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.TOO_LARGE,
                f"count {count} is over this gateway's limit of {self.max_rows} rows per "
                "request ([gateway] max_rows); ask in parts",
            )
        return None

    async def answer(self, request: Read) -> Reply | WithBody:
        """The terminal's answer to ``request`` (one that ``refusal`` let through)."""
        try:
            return await self._ask(request)
        except TerminalRefused as exc:
            return rejected(request.uuid, request.action, ErrorCode(exc.code), str(exc))
        except TerminalError as exc:
            logger.warning("{} {} failed: {}", request.action, request.uuid, exc)
            return terminal_unanswered(request)

    async def _ask(self, request: Read) -> Reply | WithBody:
        worker = self._worker
        if isinstance(request, Mt5Read):
            call = Mt5Call(
                function=request.function,
                args=list(request.args),
                kwargs=dict(request.kwargs),
                max_rows=self.max_rows,
            )
            answer = await worker.call(MT5_READ, call)
            if answer.dtype is None:
                return ok(request, mt5=answer.value)
            rows = Rows(dtype=answer.dtype, rows=answer.rows)
            return WithBody(ok(request, mt5=answer.value, rows=rows), answer.data)
        if isinstance(request, GetOrders):
            query = OrdersQuery(symbol=request.symbol, group=request.group, ticket=request.ticket)
            return ok(request, orders=await worker.call(ORDERS, query))
        if isinstance(request, GetHistory):
            history = await worker.call(
                HISTORY,
                HistoryQuery(
                    kind=request.kind.value,
                    max_rows=self.max_rows,
                    date_from=_seconds(request.date_from),
                    date_to=_seconds(request.date_to),
                    group=request.group,
                    ticket=request.ticket,
                    position=request.position,
                    symbol=request.symbol,
                ),
            )
            if request.kind.value == "DEALS":
                return ok(request, deals=history.deals)
            return ok(request, orders=history.orders)
        if isinstance(request, GetSymbols):
            return ok(request, symbols=await worker.call(SYMBOLS, request.group))
        if isinstance(request, GetSymbol):
            return ok(request, symbol_info=await worker.call(SYMBOL, request.symbol))
        if isinstance(request, GetTick):
            return ok(request, ticks=await worker.call(LATEST, request.symbols))
        if isinstance(request, GetRates):
            rates = RatesQuery(
                symbol=request.symbol,
                timeframe=request.timeframe.constant,
                max_rows=self.max_rows,
                count=request.count,
                start_pos=request.start_pos or 0,
                date_from=_seconds(request.date_from),
                date_to=_seconds(request.date_to),
            )
            table = await worker.call(RATES, rates)
            return WithBody(ok(request, rows=Rows(dtype=RATES_DTYPE, rows=table.rows)), table.data)
        ticks = TicksQuery(
            symbol=request.symbol,
            date_from=int(request.date_from),
            flags=request.flags.value,
            max_rows=self.max_rows,
            count=request.count,
            date_to=_seconds(request.date_to),
        )
        table = await worker.call(TICKS, ticks)
        return WithBody(ok(request, rows=Rows(dtype=TICKS_DTYPE, rows=table.rows)), table.data)


def _seconds(date: float | None) -> int | None:
    """A date as the terminal takes it: whole epoch seconds."""
    return None if date is None else int(date)
