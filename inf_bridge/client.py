"""``Bridge``: the asyncio client a strategy uses to trade through the gateway.

    async with Bridge("tcp://127.0.0.1:5555", secret=secret) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.10, sl=1.0800)
        await bridge.close_position(fill.ticket)

Every new order is checked against the wire contract's limits (``InvalidOrder``), then the
``CircuitBreaker`` and the node's ``RiskMonitor`` (all local, no network), is recorded as
passed (``[RISK_PASS]``), signed (``RISK_PASS:...``, PROTOCOL.md), and is never left in doubt
within its ``order_timeout``:

- a request that could not even be sent (no connection) raises ``GatewayUnreachable``: nothing
  left this process;
- one sent and not answered is sent again with the same uuid (the gateway's idempotency key,
  so it cannot execute twice), re-signed, with backoff; then the gateway is asked about it;
- a ``PENDING`` answer is waited on;
- a "not executed, try again" answer (``MT5_DISCONNECTED``, ``BUSY``, ``JOURNAL_UNAVAILABLE``)
  is sent again with the same uuid, with backoff (``retry_not_executed``), unless the breaker
  opened meanwhile (for an OPEN).

Only when none of that answers does ``send_order`` raise ``OutcomeUnknown``, carrying the uuid
to ask about later.

A background ``HeartbeatMonitor`` PINGs the gateway every ``heartbeat_interval`` (signed, so
that the gateway says whether it accepts this node's secret); after ``heartbeat_failures``
misses in a row, or when the gateway refuses the secret, the breaker opens and new orders are
refused at once. Every order leaves an audit trail (``inf_bridge.audit``), each line starting
with its uuid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid as uuid_module
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Final, Self, TypeVar, cast

import msgspec
import numpy.typing as npt
import zmq

from inf_bridge.audit import record
from inf_bridge.breaker import DAILY_LOSS, CircuitBreaker
from inf_bridge.channel import Channel, Transport
from inf_bridge.curve import load_curve_keys
from inf_bridge.errors import (
    BadReply,
    CircuitOpen,
    GatewayTimeout,
    GatewayUnreachable,
    InvalidOrder,
    InvalidRequest,
    OrderRejected,
    OutcomeUnknown,
    RequestRefused,
    RiskRejected,
)
from inf_bridge.heartbeat import HeartbeatMonitor
from inf_bridge.market import as_timeframe, epoch, rows_array
from inf_bridge.results import OrderDone, OrderFilled, OrderState
from inf_bridge.risk import Reservation, RiskLimits, RiskMonitor
from inf_bridge.server_times import ServerTimes
from inf_bridge.streams import EventHub, Gap, Stream
from inf_bridge.trade_events import TradeEvents
from plumbing.config import next_port
from protocol import (
    RATES_DTYPE,
    TICKS_DTYPE,
    Account,
    AuditEvent,
    Bar,
    Cancel,
    Close,
    CloseBy,
    Command,
    Deal,
    ErrorCode,
    Event,
    Filling,
    GetAccount,
    GetEvents,
    GetHistory,
    GetOrder,
    GetOrders,
    GetPositions,
    GetRates,
    GetSymbol,
    GetSymbols,
    GetTick,
    GetTicks,
    Halt,
    HistoryKind,
    ModifyOrder,
    ModifyPosition,
    Mt5Read,
    Mt5Value,
    Open,
    Order,
    PendingType,
    Ping,
    Place,
    Position,
    Reply,
    Request,
    Resume,
    Side,
    Signable,
    SignedRequest,
    Status,
    SymbolInfo,
    Tick,
    TickFlags,
    Timeframe,
    VolumeRounding,
    bar_topic,
    outcome_record,
    secret_key,
    sign,
    state_topic,
    terminal_answer,
    tick_topic,
    trade_topic,
    validation_message,
)

__all__ = ["Bridge"]

SignableT = TypeVar("SignableT", bound=Signable)
# When a pending order lapses: "GTC", "DAY", epoch seconds, or an aware datetime.
Expiry = str | int | float | datetime | None
RequestT = TypeVar("RequestT", bound=Request)
R = TypeVar("R", bound=msgspec.Struct)

_RETRY_BACKOFF_S: Final = 0.2
_RETRY_BACKOFF_MAX_S: Final = 2.0
_PENDING_POLL_S: Final = 0.25
# Answers that say "not executed, try again with the same uuid" (PROTOCOL.md, error codes).
_TRY_AGAIN: Final = frozenset(
    {ErrorCode.MT5_DISCONNECTED, ErrorCode.BUSY, ErrorCode.JOURNAL_UNAVAILABLE}
)
# msgspec names the field of a failed check as "... - at `$.volume`".
_AT_FIELD: Final = re.compile(r"(.*) - at `\$\.(\w+)(?:\[\d+\])?`")  # or an item: $.symbols[0]


def new_uuid() -> str:
    """A fresh request id: 32 hex characters."""
    return uuid_module.uuid4().hex


def _checked(kind: type[RequestT], /, **fields: Any) -> RequestT:
    """``fields`` as a ``kind`` request, checked as the gateway checks it: against the wire
    contract's own field types (``protocol.messages``), then the fields together
    (``problem()``), so that nothing the gateway would refuse gets past the client."""
    try:
        request = msgspec.convert(fields, kind)
    except msgspec.ValidationError as exc:
        message = validation_message(exc)
        found = _AT_FIELD.fullmatch(message)
        if found is None:
            raise InvalidOrder(kind.__name__, message) from None
        problem, field = found.groups()
        raise InvalidOrder(field, f"{fields.get(field)!r} is not allowed: {problem}") from None
    if (why := request.problem()) is not None:
        raise InvalidOrder(str(kind.__struct_config__.tag), why)
    return request


class Bridge:
    """An async client of the gateway at ``endpoint``.

    ``secret`` is the shared signing secret (``None`` only for a gateway started with
    ``--no-signature-validation``); ``operator_secret`` signs HALT and RESUME when the gateway
    has an operator key (``operator_secret_file``), else ``secret`` signs them too. ``risk`` is
    the node's limits (``RiskLimits``, or a ``RiskMonitor`` to share between Bridges).

    ``request_timeout`` bounds each round trip; ``retries`` is how many times an unanswered
    order is sent again (same uuid) before the gateway is asked about it;
    ``retry_not_executed`` sends an order answered "not executed, try again" (the terminal or
    its worker lost, the gateway busy, its journal unavailable) again, with backoff; and a
    query answered ``BUSY``, within its ``request_timeout``.
    ``order_timeout`` is each order's deadline: no attempt is sent, and no ``PENDING`` answer
    waited on, after it; ``send_order`` then reports what it knows (the last attempt's
    answer, and a GET_ORDER about an unanswered one, may take one ``request_timeout`` each).
    ``heartbeat_recovery`` healthy beats close a breaker the heartbeat opened.
    ``curve_server_key`` and ``curve_client_cert`` turn on CURVE (``inf_bridge.curve``).
    ``transport`` replaces the DEALER connection (``Channel``) with anything of its interface
    (``inf_bridge.channel.Transport``), such as a test's scripted gateway; the connection's
    own options (``context``, CURVE) then belong to it.

    ``bridge.health`` is the heartbeat's view (``state``, round-trip statistics, clock
    offset, whether the gateway accepts the secret), ``bridge.breaker`` the circuit breaker,
    ``bridge.risk`` the risk monitor.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        secret: str | bytes | None,
        operator_secret: str | bytes | None = None,
        risk: RiskLimits | RiskMonitor | None = None,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 2.0,
        heartbeat_failures: int = 3,
        heartbeat_recovery: int = 3,
        request_timeout: float = 2.0,
        retries: int = 2,
        retry_not_executed: bool = True,
        order_timeout: float = 30.0,
        curve_server_key: str | bytes | os.PathLike[str] | None = None,
        curve_client_cert: str | os.PathLike[str] | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        clock: Callable[[], float] = time.time,
        transport: Transport | None = None,
        events_endpoint: str | None = None,
    ) -> None:
        if request_timeout <= 0 or order_timeout <= 0:
            raise ValueError("request_timeout and order_timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be zero or more")
        self.endpoint = endpoint
        self.request_timeout = request_timeout
        self.retries = retries
        self.retry_not_executed = retry_not_executed
        self.order_timeout = order_timeout
        self._key = secret_key(secret) if secret is not None else None
        self._operator_key = (
            secret_key(operator_secret) if operator_secret is not None else self._key
        )
        self._clock = clock
        if (curve_server_key is None) != (curve_client_cert is None):
            raise ValueError("CURVE needs both curve_server_key and curve_client_cert")
        curve = (
            load_curve_keys(curve_server_key, curve_client_cert)
            if curve_server_key is not None and curve_client_cert is not None
            else None
        )
        if transport is None:
            transport = Channel(endpoint, context=context, curve=curve)
        elif context is not None or curve is not None:
            raise ValueError("context and CURVE are options of the real Channel, not a transport")
        # Typed as the real Channel, whose socket bench/presend.py taps; the Bridge itself uses
        # only the Transport's methods (tests/test_client_logic.py runs it on a scripted one).
        self._channel = cast(Channel, transport)
        self.events_endpoint = events_endpoint or next_port(endpoint)
        self._context = context
        self._curve = curve
        self._hub: EventHub | None = None
        self._state = "new"
        self.breaker = CircuitBreaker()
        self.risk = RiskMonitor(risk) if isinstance(risk, RiskLimits) else risk
        self._clock_of_server = ServerTimes()  # kept to the heartbeat's last PING
        self.health = HeartbeatMonitor(
            self._ping_reply,
            self.breaker,
            interval=heartbeat_interval,
            timeout=heartbeat_timeout,
            failures=heartbeat_failures,
            recovery_beats=heartbeat_recovery,
            on_beat=self._watch_book if self.risk is not None else None,
            clock=clock,
        )
        self._heartbeat: asyncio.Task[None] | None = None
        self._changed_at: float | None = None  # when this Bridge's last order executed

    # -- life ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, take a first heartbeat (clock offset, risk book, secret check), start the
        heartbeat task. A Bridge is opened once and closed once."""
        if self._state != "new":
            raise RuntimeError(f"this Bridge is already {self._state}; create a new one")
        await self._channel.open()
        self._state = "open"
        await self.health.beat()
        self._heartbeat = asyncio.create_task(self._beat_forever(), name="bridge-heartbeat")

    async def close(self) -> None:
        if self._state == "closed":
            raise RuntimeError("this Bridge is already closed")
        self._state = "closed"
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._hub is not None:
            self._hub.close()
        await self._channel.close()

    async def _beat_forever(self) -> None:
        await asyncio.sleep(self.health.interval)
        await self.health.run()

    # -- queries -----------------------------------------------------------------------------

    async def ping(self) -> float:
        """Round-trip time to the gateway, in seconds: an unsigned PING, the cheapest request
        there is. Whether the gateway accepts this node's secret is the heartbeat's to say
        (``health.authenticated``): its beats are signed."""
        self._require_open()
        started = time.perf_counter()
        await self._channel.request(
            Ping(uuid=new_uuid(), timestamp=self._now()), self.request_timeout
        )
        return time.perf_counter() - started

    async def _ping_reply(self, timeout: float) -> Reply:
        """One PING, signed when there is a secret: the reply then says whether the gateway
        accepts it (``authenticated``, ``auth_error``)."""
        self._require_open()
        return await self._channel.request(
            self._stamp(Ping(uuid=new_uuid(), timestamp=0.0)), timeout
        )

    async def get_account(self, *, fresh: bool = False) -> Account:
        """The account as the gateway's trade watcher last read it (a fraction of a second
        old: it never waits behind orders), provided that reading came after this Bridge's
        last order (so it shows that order); else, or with ``fresh``, read from the terminal
        now (within the gateway's ``read_timeout_ms``, past which the last reading answers)."""
        request = GetAccount(
            uuid=new_uuid(), timestamp=self._now(), fresh=fresh, after=self._changed_at
        )
        reply = await self._query(request)
        if reply.account is None:
            raise BadReply("GET_ACCOUNT reply without an account")
        return reply.account

    async def get_positions(
        self, symbol: str | None = None, *, fresh: bool = False
    ) -> list[Position]:
        """The open positions (of ``symbol``), read as ``get_account`` reads the account."""
        found = (await self._positions(symbol, fresh=fresh)).positions or []
        return [self._server_times(position) for position in found]

    async def _positions(self, symbol: str | None, *, fresh: bool) -> Reply:
        request = GetPositions(
            uuid=new_uuid(),
            timestamp=self._now(),
            symbol=symbol,
            fresh=fresh,
            after=self._changed_at,
        )
        return await self._query(request)

    async def get_order(self, uuid: str) -> OrderState:
        """What the gateway knows of the order or command sent with ``uuid``: its status
        (``FILLED``; ``OK`` for a PLACE, MODIFY or CANCEL carried out, and HALT or RESUME;
        ``REJECTED`` with the refusal's code; or ``PENDING``) and result.

        Raises ``OrderRejected`` with ``ORDER_NOT_FOUND`` when it knows nothing of it.
        """
        self._require_open()
        request = GetOrder(uuid=new_uuid(), timestamp=self._now(), order_uuid=uuid)
        reply = await self._answer(request)
        if reply.order_uuid is None:  # the GET_ORDER itself was refused
            raise _rejection(reply)
        return OrderState.from_reply(reply)

    # -- market data ---------------------------------------------------------------------------

    async def symbols(self, group: str | None = None) -> list[SymbolInfo]:
        """The terminal's symbols (in the Market Watch or not), or those ``group`` selects as
        ``symbols_get`` reads it: comma-separated masks, ``*`` for anything, ``!`` to exclude
        (``"*USD*,!EUR*"``)."""
        request = _valid(GetSymbols, uuid=new_uuid(), timestamp=self._now(), group=group)
        return [self._server_times(info) for info in (await self._market(request)).symbols or []]

    async def symbol(self, symbol: str) -> SymbolInfo:
        """One symbol's specification, every field of the package's ``SymbolInfo`` (its last
        quote's ``time`` in UTC)."""
        request = _valid(GetSymbol, uuid=new_uuid(), timestamp=self._now(), symbol=symbol)
        reply = await self._market(request)
        if reply.symbol_info is None:
            raise BadReply("GET_SYMBOL reply without symbol_info")
        return self._server_times(reply.symbol_info)

    async def tick(self, symbol: str) -> Tick:
        """The latest tick of ``symbol`` (the fields of the package's ``Tick``)."""
        return (await self.quotes(symbol))[symbol]

    async def quotes(self, *symbols: str) -> dict[str, Tick]:
        """The latest tick of each of ``symbols``, by symbol (in one request)."""
        request = _valid(GetTick, uuid=new_uuid(), timestamp=self._now(), symbols=list(symbols))
        ticks = (await self._market(request)).ticks or {}
        if missing := set(symbols) - ticks.keys():
            raise BadReply(f"GET_TICK reply without {', '.join(sorted(missing))}")
        return {symbol: self._server_times(ticks[symbol]) for symbol in symbols}  # as asked

    async def rates(
        self,
        symbol: str,
        timeframe: str | int | Timeframe,
        *,
        count: int | None = None,
        start: int | None = None,
        date_from: datetime | float | None = None,
        date_to: datetime | float | None = None,
    ) -> npt.NDArray[Any]:
        """Bars, as ``copy_rates_*`` gives them: a numpy structured array (``time``, ``open``,
        ``high``, ``low``, ``close``, ``tick_volume``, ``spread``, ``real_volume``), oldest first.

        ``count`` bars ending ``start`` bars before the current one (``copy_rates_from_pos``),
        ``count`` bars opened at or before ``date_from`` (``copy_rates_from``), or the bars
        opened from ``date_from`` to ``date_to`` (``copy_rates_range``). ``timeframe`` is
        ``"M1"`` or ``TIMEFRAME_M1``; dates are epoch seconds or aware datetimes, UTC (sent on
        the terminal's clock), and the ``time`` column is UTC (docs/PROTOCOL.md, "Times").
        Raises ``InvalidRequest`` (nothing sent) for arguments that make no
        request, ``RequestRefused`` when the gateway refuses (``SYMBOL_NOT_FOUND``,
        ``TOO_LARGE``: more rows than its ``max_rows``).
        """
        request = _valid(
            GetRates,
            uuid=new_uuid(),
            timestamp=self._now(),
            symbol=symbol,
            timeframe=as_timeframe(timeframe),
            count=count,
            start_pos=start,
            date_from=self._on_server(date_from, "date_from"),
            date_to=self._on_server(date_to, "date_to"),
        )
        return await self._rows(request, RATES_DTYPE)

    async def ticks_history(
        self,
        symbol: str,
        date_from: datetime | float,
        *,
        count: int | None = None,
        date_to: datetime | float | None = None,
        flags: str | TickFlags = TickFlags.ALL,
    ) -> npt.NDArray[Any]:
        """Tick history, as ``copy_ticks_*`` gives it: a numpy structured array (``time``,
        ``bid``, ``ask``, ``last``, ``volume``, ``time_msc``, ``flags``, ``volume_real``):
        ``count`` ticks from ``date_from`` on, or those from ``date_from`` to ``date_to``.
        ``flags`` is ``"ALL"``, ``"INFO"`` or ``"TRADE"`` (``COPY_TICKS_*``)."""
        request = _valid(
            GetTicks,
            uuid=new_uuid(),
            timestamp=self._now(),
            symbol=symbol,
            date_from=self._on_server(date_from, "date_from"),
            count=count,
            date_to=self._on_server(date_to, "date_to"),
            flags=flags.upper() if isinstance(flags, str) else flags,
        )
        return await self._rows(request, TICKS_DTYPE)

    async def orders(
        self, symbol: str | None = None, *, group: str | None = None, ticket: int | None = None
    ) -> list[Order]:
        """The pending orders: all, or those of ``symbol``, of a ``group`` (masks as
        ``symbols``'), or the one with ``ticket`` (one filter at most), as ``orders_get`` gives
        them: every field of the package's ``TradeOrder``."""
        request = _valid(
            GetOrders,
            uuid=new_uuid(),
            timestamp=self._now(),
            symbol=_exact(symbol) if symbol is not None else None,
            group=group,
            ticket=ticket,
        )
        return [self._server_times(order) for order in (await self._market(request)).orders or []]

    async def history(
        self,
        date_from: datetime | float | None = None,
        date_to: datetime | float | None = None,
        *,
        symbol: str | None = None,
        group: str | None = None,
        position: int | None = None,
        ticket: int | None = None,
    ) -> list[Deal]:
        """The history's deals, as ``history_deals_get`` gives them (every field of the
        package's ``TradeDeal``): those from ``date_from`` to ``date_to`` (of ``symbol``, or
        of a ``group``, optionally), every deal of a ``position``, or those of the order
        ``ticket``. Dates as ``rates``' (UTC); each deal's times in UTC, ``server_offset_s``
        the trade server's offset they were converted by."""
        reply = await self._market(
            self._history(
                HistoryKind.DEALS,
                date_from,
                date_to,
                symbol=symbol,
                group=group,
                position=position,
                ticket=ticket,
            )
        )
        return [self._server_times(deal) for deal in reply.deals or []]

    async def history_orders(
        self,
        date_from: datetime | float | None = None,
        date_to: datetime | float | None = None,
        *,
        symbol: str | None = None,
        group: str | None = None,
        position: int | None = None,
        ticket: int | None = None,
    ) -> list[Order]:
        """The history's orders, as ``history_orders_get`` gives them, selected as
        ``history``'s deals are."""
        reply = await self._market(
            self._history(
                HistoryKind.ORDERS,
                date_from,
                date_to,
                symbol=symbol,
                group=group,
                position=position,
                ticket=ticket,
            )
        )
        return [self._server_times(order) for order in reply.orders or []]

    def _history(
        self,
        kind: HistoryKind,
        date_from: datetime | float | None,
        date_to: datetime | float | None,
        *,
        symbol: str | None,
        group: str | None,
        position: int | None,
        ticket: int | None,
    ) -> GetHistory:
        return _valid(
            GetHistory,
            uuid=new_uuid(),
            timestamp=self._now(),
            kind=kind,
            date_from=self._on_server(date_from, "date_from"),
            date_to=self._on_server(date_to, "date_to"),
            group=group,
            position=position,
            ticket=ticket,
            symbol=symbol,
        )

    def ticks(self, *symbols: str, on_gap: Callable[[Gap], None] | None = None) -> Stream[Tick]:
        """A live stream of ``symbols``' ticks (``async for tick in bridge.ticks("EURUSD")``;
        each ``Tick`` has its ``symbol``). It survives a gateway restart; what it missed is in
        its ``gaps`` (and handed to ``on_gap``). Close it with ``aclose()`` or ``async with``.
        """
        if not symbols:
            raise InvalidRequest("symbols", "name at least one symbol")
        topics = [tick_topic(_valid_symbol(symbol)) for symbol in dict.fromkeys(symbols)]
        times = self._server_times
        return Stream(self._events(), topics, lambda event: _utc(times, _tick_of(event)), on_gap)

    def bars(
        self,
        symbol: str,
        timeframe: str | int | Timeframe,
        *,
        on_gap: Callable[[Gap], None] | None = None,
    ) -> Stream[Bar]:
        """A live stream of ``symbol``'s bars of ``timeframe``, each as it closes."""
        topic = bar_topic(_valid_symbol(symbol), as_timeframe(timeframe).value)
        times = self._server_times
        return Stream(self._events(), [topic], lambda event: _utc(times, _bar_of(event)), on_gap)

    def states(self, *, on_gap: Callable[[Gap], None] | None = None) -> Stream[Event]:
        """A live stream of the gateway's state changes (``event.state``: ``TERMINAL_LOST``,
        ``TERMINAL_BACK``, ``HALTED``, ``RESUMED``, ``STOPPING``; ``event.detail``)."""
        return Stream(self._events(), [state_topic()], _state_of, on_gap)

    def events(
        self,
        since: int | None = None,
        *,
        log: str | None = None,
        on_gap: Callable[[Gap], None] | None = None,
    ) -> TradeEvents:
        """The trade events after sequence number ``since`` (``None``: from now on), each
        once and in order, then live: ``DealEvent``, ``OrderEvent``, ``AccountEvent``, each
        with its ``.seq``. Keep the last ``seq`` seen and the iterator's ``.log``, and resume
        from them after a restart (``inf_bridge.trade_events``)."""
        self._require_open()
        live: Stream[Event] = Stream(self._events(), [trade_topic()], _event_itself)
        times = self._server_times
        return TradeEvents(self._event_page, live, since, log=log, on_gap=on_gap, to_utc=times)

    async def _event_page(self, since: int, limit: int) -> Reply:
        return await self._answer(
            GetEvents(uuid=new_uuid(), timestamp=self._now(), since=since, limit=limit)
        )

    def _events(self) -> EventHub:
        self._require_open()
        if self._hub is None:
            if self.events_endpoint is None:
                raise RuntimeError(
                    f"no event endpoint: {self.endpoint} has no tcp port to add one to; give "
                    "Bridge(..., events_endpoint=...)"
                )
            self._hub = EventHub(
                self.events_endpoint,
                context=self._context or zmq.Context.instance(),
                curve=self._curve,
            )
        return self._hub

    async def _market(self, request: Request) -> Reply:
        """The reply to a market-data request; ``RequestRefused`` when it was refused."""
        self._require_open()
        reply = await self._answer(request)
        if reply.status is Status.REJECTED:
            raise RequestRefused(reply.error_code or "", reply.error_msg or "refused")
        return reply

    async def mt5_read(
        self, function: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> tuple[Mt5Value, npt.NDArray[Any] | None]:
        """Call one read function of the ``MetaTrader5`` package in the terminal, with these
        arguments as the package takes them (MT5_READ, ``inf_bridge.mt5`` is built on it):
        what it did (``Mt5Value``: its value as the wire carries it, ``last_error()`` after it,
        or the ``TypeError`` it raised), and its numpy array if it returned one.

        Raises ``InvalidRequest`` (nothing sent) for a function that is not a read or
        arguments the wire cannot carry, ``RequestRefused`` when the gateway refuses
        (``TOO_LARGE``, ``MT5_DISCONNECTED``, ``BUSY``).
        """
        request = _valid(
            Mt5Read,
            uuid=new_uuid(),
            timestamp=self._now(),
            function=function,
            args=list(args),
            kwargs=dict(kwargs or {}),
        )
        if problem := request.problem():
            raise InvalidRequest("function", problem)
        self._require_open()
        reply, body = await self._answer_with_body(request)
        if reply.status is Status.REJECTED or reply.mt5 is None:
            raise RequestRefused(reply.error_code or "", reply.error_msg or "refused")
        if reply.rows is None:
            return reply.mt5, None
        expected = RATES_DTYPE if function.startswith("copy_rates") else TICKS_DTYPE
        return reply.mt5, rows_array(reply, body, expected)

    async def _rows(
        self, request: GetRates | GetTicks, dtype: list[tuple[str, str]]
    ) -> npt.NDArray[Any]:
        self._require_open()
        reply, body = await self._answer_with_body(request)
        if reply.status is Status.REJECTED:
            raise RequestRefused(reply.error_code or "", reply.error_msg or "refused")
        return self._times().rows_to_utc(rows_array(reply, body, dtype))

    @property
    def server_times(self) -> ServerTimes:
        """The trade server's clock, as the heartbeat's last PING said it: what the Bridge
        converts times by (docs/PROTOCOL.md, "Times")."""
        return self._times()

    def _times(self) -> ServerTimes:
        """The trade server's clock, as the heartbeat's last PING said it."""
        self._clock_of_server.update(self.health.gateway)
        return self._clock_of_server

    def _server_times(self, record: R) -> R:
        """``record`` with its times in UTC (``ServerTimes.to_utc``)."""
        return self._times().to_utc(record)

    def _on_server(self, date: datetime | float | None, field: str) -> float | None:
        """A date the caller gave (UTC) as the terminal takes it (its server's clock)."""
        return self._times().to_server(epoch(date, field))

    # -- orders ------------------------------------------------------------------------------

    async def send_order(
        self,
        symbol: str,
        type: Side | str,
        volume: float,
        *,
        price: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        deviation: int | None = None,
        magic: int | None = None,
        comment: str | None = None,
        type_filling: Filling | str | None = None,
        volume_rounding: VolumeRounding | None = None,
        uuid: str | None = None,
    ) -> OrderFilled:
        """Open a position with a market order; return the fill. ``type_filling`` (``FOK``,
        ``IOC``, ``RETURN``, ``BOC``) is the filling policy; by default the gateway sends the
        one the symbol allows. Prices are sent on the symbol's tick grid (the gateway fits
        them); a volume off the symbol's step is refused (``OrderRejected`` with
        ``INVALID_VOLUME``, naming the symbol's minimum, maximum and step) unless
        ``volume_rounding="down"``, when the fill's ``volume_requested`` says what was asked.

        Raises, without sending anything: ``InvalidOrder`` for a value outside the wire
        contract's limits (a volume of 0, NaN, a negative price...), ``CircuitOpen`` while the
        breaker is open, ``RiskRejected`` when a limit forbids it, ``GatewayUnreachable`` when
        there is no connection to the gateway. After sending: ``OrderRejected`` when the
        gateway or the terminal refused it, ``GatewayTimeout`` when it was not answered and
        the gateway does not have it (all three: not executed); ``OutcomeUnknown`` when it
        cannot be told whether it executed.
        """
        self._require_open()
        order = _checked(
            Open,
            uuid=uuid or new_uuid(),
            timestamp=0.0,
            symbol=symbol,
            type=type,
            volume=volume,
            price=price,
            sl=sl,
            tp=tp,
            deviation=deviation,
            magic=magic,
            comment=comment,
            type_filling=_filling(type_filling),
            volume_rounding=volume_rounding,
        )
        reply = await self._add_exposure(order)
        return OrderFilled.from_reply(order.uuid, order.action, reply)

    async def place_order(
        self,
        symbol: str,
        type: PendingType | str,
        volume: float,
        price: float,
        *,
        sl: float | None = None,
        tp: float | None = None,
        expiration: Expiry = None,
        stoplimit: float | None = None,
        magic: int | None = None,
        comment: str | None = None,
        type_filling: Filling | str | None = None,
        volume_rounding: VolumeRounding | None = None,
        uuid: str | None = None,
    ) -> OrderDone:
        """Place a pending order: ``BUY_LIMIT``, ``SELL_LIMIT``, ``BUY_STOP``, ``SELL_STOP``,
        ``BUY_STOP_LIMIT`` or ``SELL_STOP_LIMIT`` (``stoplimit``: the limit order's price) at
        ``price``; ``expiration`` is ``"GTC"`` (the default), ``"DAY"``, or a time: an aware
        datetime or epoch seconds, UTC (sent on the terminal's clock). Returns the placed
        order (``.order``: its ticket).

        Checked like ``send_order``: the breaker and the risk limits (a pending order counts
        toward exposure as if filled), and raises the same errors; ``OrderRejected`` with
        ``INVALID_PRICE`` for a price on the wrong side of the market, ``INVALID_EXPIRATION``
        for an expiration already past.
        """
        self._require_open()
        order = _checked(
            Place,
            uuid=uuid or new_uuid(),
            timestamp=0.0,
            symbol=symbol,
            type=type.upper() if isinstance(type, str) else type,  # "buy_limit" as well
            volume=volume,
            price=price,
            stoplimit=stoplimit,
            sl=sl,
            tp=tp,
            expiration=_expiration(expiration, self._times()),
            magic=magic,
            comment=comment,
            type_filling=_filling(type_filling),
            volume_rounding=volume_rounding,
        )
        reply = await self._add_exposure(order)
        return OrderDone.from_reply(order.uuid, order.action, reply)

    async def modify_position(
        self,
        ticket: int,
        *,
        sl: float | None = None,
        tp: float | None = None,
        uuid: str | None = None,
    ) -> OrderDone:
        """Move position ``ticket``'s stop loss and take profit (0 removes a level; a level
        not given stays). Allowed while halted or with the breaker open: it manages risk.
        ``OrderRejected`` with ``NO_CHANGES`` when the position has these levels already."""
        return await self._change(
            ModifyPosition, uuid=uuid or new_uuid(), timestamp=0.0, ticket=ticket, sl=sl, tp=tp
        )

    async def modify_order(
        self,
        order: int,
        *,
        price: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        expiration: Expiry = None,
        stoplimit: float | None = None,
        uuid: str | None = None,
    ) -> OrderDone:
        """Change pending order ``order``'s price, stops, expiration or stop-limit price
        (what is not given stays). ``OrderRejected`` with ``ORDER_NOT_FOUND`` when ``order``
        is not a pending order (it says what it is instead), ``NO_CHANGES`` when nothing
        would change."""
        return await self._change(
            ModifyOrder,
            uuid=uuid or new_uuid(),
            timestamp=0.0,
            ticket=order,
            price=price,
            stoplimit=stoplimit,
            sl=sl,
            tp=tp,
            expiration=_expiration(expiration, self._times()),
        )

    async def cancel_order(self, order: int, *, uuid: str | None = None) -> OrderDone:
        """Cancel pending order ``order``. Always allowed: it removes exposure."""
        done = await self._change(Cancel, uuid=uuid or new_uuid(), timestamp=0.0, ticket=order)
        if self.risk is not None:
            self.risk.cancelled(order)
        return done

    async def close_by(self, ticket: int, by: int, *, uuid: str | None = None) -> OrderFilled:
        """Close position ``ticket`` by the opposite position ``by`` of the same symbol
        (hedging accounts): both shrink by the smaller volume. Always allowed."""
        self._require_open()
        order = _checked(CloseBy, uuid=uuid or new_uuid(), timestamp=0.0, ticket=ticket, by=by)
        _always_allowed(order)
        reply = await self._execute(order)
        if self.risk is not None:
            self.risk.closed(ticket, reply.volume or 0.0)
            self.risk.closed(by, reply.volume or 0.0)
        return OrderFilled.from_reply(order.uuid, order.action, reply)

    async def _change(
        self, kind: type[ModifyPosition | ModifyOrder | Cancel], /, **fields: Any
    ) -> OrderDone:
        """Send a command that adds no exposure, past the breaker and the risk limits."""
        self._require_open()
        order = _checked(kind, **fields)
        _always_allowed(order)
        reply = await self._execute(order)
        return OrderDone.from_reply(order.uuid, order.action, reply)

    async def _add_exposure(self, order: Open | Place) -> Reply:
        """Send ``order`` past the breaker and the risk limits; its exposure is held until
        the outcome is known."""
        if self.breaker.is_open:
            reason = f"CIRCUIT_OPEN:{self.breaker.reason}"
            record(
                AuditEvent.RISK_REJECTED,
                f"reason={reason}",
                uuid=order.uuid,
                level="WARNING",
                reason=reason,
            )
            raise CircuitOpen(self.breaker.reason or "")
        reservation = self._check_risk(order)
        _risk_passed(order)
        ticket: int | None = None
        try:
            reply = await self._execute(order)
            ticket = (reply.order if isinstance(order, Place) else reply.ticket) or 0
            if self.risk is not None and reply.symbol:  # the broker's name for it
                self.risk.named(order.symbol, reply.symbol)
            return reply
        except OutcomeUnknown:
            # Hold the exposure under a placeholder ticket until the next book sync.
            ticket = -1 - abs(hash(order.uuid))
            raise
        finally:
            if self.risk is not None and reservation is not None:
                self.risk.settle(reservation, ticket, pending=isinstance(order, Place))

    def _check_risk(self, order: Open | Place) -> Reservation | None:
        try:
            reservation = self.risk.check(order) if self.risk is not None else None
        except RiskRejected as exc:
            record(
                AuditEvent.RISK_REJECTED,
                f"reason={exc.reason}: {exc.message}",
                uuid=order.uuid,
                level="WARNING",
                reason=exc.reason,
            )
            raise
        return reservation

    async def close_position(
        self,
        ticket: int,
        volume: float | None = None,
        *,
        deviation: int | None = None,
        magic: int | None = None,
        comment: str | None = None,
        type_filling: Filling | str | None = None,
        volume_rounding: VolumeRounding | None = None,
        uuid: str | None = None,
    ) -> OrderFilled:
        """Close position ``ticket``, wholly or (with ``volume``) in part; return the fill.
        The closing deal carries ``magic`` (by default the position's) and ``comment``.

        Closing reduces risk, so neither the risk limits nor an open breaker stop it. Raises
        ``InvalidOrder`` (nothing sent) for a ticket or volume outside the contract's limits.
        """
        self._require_open()
        order = _checked(
            Close,
            uuid=uuid or new_uuid(),
            timestamp=0.0,
            ticket=ticket,
            volume=volume,
            deviation=deviation,
            magic=magic,
            comment=comment,
            type_filling=_filling(type_filling),
            volume_rounding=volume_rounding,
        )
        _always_allowed(order)
        fill = OrderFilled.from_reply(order.uuid, order.action, await self._execute(order))
        if self.risk is not None:
            self.risk.closed(order.ticket, fill.volume)
        return fill

    async def halt(self, reason: str | None = None) -> bool:
        """Throw the gateway's kill switch: it refuses new OPEN orders, from every client,
        until ``resume()`` (CLOSE still works). Returns whether the gateway is halted.

        Signed with ``operator_secret`` when there is one. ``InvalidOrder`` for a reason the
        contract refuses (too long, control characters)."""
        return await self._switch(_checked(Halt, uuid=new_uuid(), timestamp=0.0, reason=reason))

    async def resume(self) -> bool:
        """Lift a halt. Returns whether the gateway is still halted (``False``)."""
        return await self._switch(Resume(uuid=new_uuid(), timestamp=0.0))

    # -- plumbing ----------------------------------------------------------------------------

    async def _switch(self, request: Halt | Resume) -> bool:
        self._require_open()
        reply = await self._settle(request)
        if reply.status is Status.REJECTED:
            raise _rejection(reply)
        return bool(reply.halted)

    async def _watch_book(self) -> None:
        """After each healthy beat: sync the risk book, and trip the breaker on a daily loss."""
        risk = self.risk
        assert risk is not None
        if risk.limits.watches_book:
            asked = risk.now()
            reply = await self._positions(None, fresh=False)
            # The gateway's reading is ``age_ms`` old: fills since then are kept, not lost.
            taken = asked - (reply.age_ms or 0.0) / 1000
            risk.sync(reply.positions or [], taken, await self.orders())
        if risk.limits.watches_equity and risk.daily_loss_breached(await self.get_account()):
            self.breaker.trip(DAILY_LOSS)

    def _now(self) -> float:
        """Now, in the gateway's clock (signatures are checked against it)."""
        return self._clock() + self.health.clock_offset

    @property
    def clock_offset(self) -> float:
        """The gateway's clock minus ours, in seconds, as the heartbeat estimates it."""
        return self.health.clock_offset

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"this Bridge is {self._state}; use `async with Bridge(...)`")

    async def _query(self, request: Request) -> Reply:
        self._require_open()
        reply = await self._answer(request)
        if reply.status is Status.REJECTED:
            raise _rejection(reply)
        return reply

    async def _answer(self, request: Request) -> Reply:
        """The reply to ``request``, which changes nothing (``_answer_with_body``)."""
        reply, _ = await self._answer_with_body(request)
        return reply

    async def _answer_with_body(self, request: Request) -> tuple[Reply, bytes]:
        """The reply to ``request``, which changes nothing, and the frame of rows after it if
        any: so it is asked again while the gateway answers ``BUSY``, within its
        ``request_timeout``."""
        deadline = _monotonic() + self.request_timeout
        backoff = _RETRY_BACKOFF_S
        reply, body = await self._channel.request_with_body(request, self.request_timeout)
        while (
            self.retry_not_executed
            and reply.error_code == ErrorCode.BUSY
            and _monotonic() + backoff < deadline
        ):
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RETRY_BACKOFF_MAX_S)
            request = msgspec.structs.replace(request, timestamp=self._now())
            reply, body = await self._channel.request_with_body(request, self.request_timeout)
        return reply, body

    def _stamp(self, request: SignableT) -> SignableT:
        """The request as sent now: a fresh timestamp and, with a key, a fresh signature (the
        operator's key for HALT and RESUME)."""
        now = self._now()
        stamped = msgspec.structs.replace(request, timestamp=now)
        key = self._operator_key if isinstance(request, Halt | Resume) else self._key
        if key is None:
            return stamped
        return sign(key, stamped, ts_ms=int(now * 1000))

    async def _execute(self, order: Command) -> Reply:
        """Send ``order`` until its outcome is known (see the module docstring): the reply
        of a command carried out, or the error."""
        try:
            reply = await self._settle(order)
        except OutcomeUnknown as exc:
            self._changed(self._now())  # it may land any time: read the terminal from now
            record(AuditEvent.OUTCOME_UNKNOWN, exc.message, uuid=order.uuid, level="ERROR")
            raise
        except GatewayTimeout as exc:
            record(AuditEvent.NOT_EXECUTED, str(exc), uuid=order.uuid, level="ERROR")
            raise
        event, message, level, fields = outcome_record(order.action, reply)
        record(event, message, uuid=order.uuid, level=level, **fields)  # as the gateway does
        if reply.status in (Status.FILLED, Status.OK):
            self._changed(reply.timestamp)
            return reply
        raise _rejection(reply)

    def _changed(self, at: float) -> None:
        """This Bridge changed the account at ``at`` (the gateway's clock): its reads must
        come from a reading taken after that (``get_account``)."""
        self._changed_at = at if self._changed_at is None else max(self._changed_at, at)

    async def _settle(self, order: SignedRequest) -> Reply:
        """Send ``order`` until its outcome is known or its ``order_timeout`` has passed
        (the module docstring says how each answer is handled)."""
        deadline = _monotonic() + self.order_timeout
        backoff = _RETRY_BACKOFF_S
        attempt = resends = 0
        unanswered = False  # a send got no answer: it may have arrived, and executed
        refused: Reply | None = None  # the last "not executed, try again" answer
        after: str | None = None  # why the next attempt is made
        stopped: str | None = None  # why no more attempts are made, if not the order_timeout
        while True:
            if attempt and isinstance(order, Open | Place) and self.breaker.is_open:
                stopped = f"the circuit breaker opened ({self.breaker.reason})"
                break
            attempt += 1
            try:
                reply = await self._channel.request(
                    self._stamp(order),
                    self.request_timeout,
                    partial(_sent, order, attempt, after),
                )
            except GatewayUnreachable:
                if unanswered:
                    break  # an earlier send is in doubt: ask about it
                if refused is None:
                    raise  # nothing was ever sent
                stopped = "the gateway became unreachable"
                break
            except GatewayTimeout:
                unanswered, after = True, "no answer"
                resends += 1
                if resends > self.retries:
                    break
            else:
                if reply.status is Status.PENDING:
                    settled = await self._await_pending(order.uuid, deadline)
                    if settled is not None:
                        return settled
                    # Reconciled as never executed: the uuid is free again, send it again.
                    unanswered, after = False, "reconciled as not executed"
                elif self.retry_not_executed and reply.error_code in _TRY_AGAIN:
                    # The gateway looked the uuid up before refusing: no earlier send of it
                    # is in flight or executed, so nothing is in doubt any more.
                    unanswered, refused, after = False, reply, reply.error_code
                else:
                    return reply
            pause = min(backoff, deadline - _monotonic())
            if pause <= 0:
                break
            await asyncio.sleep(pause)
            backoff = min(backoff * 2, _RETRY_BACKOFF_MAX_S)
        if unanswered:
            return await self._ask(order, deadline)
        stopped = stopped or f"its order_timeout ({self.order_timeout:g} s) ran out"
        if refused is not None:
            note = f"; sent {attempt} time(s), not sent again: {stopped}"
            return msgspec.structs.replace(refused, error_msg=(refused.error_msg or "") + note)
        raise GatewayTimeout(
            f"{order.action} {order.uuid} was not executed (reconciled as never executed), "
            f"and {stopped}"
        )

    async def _ask(self, order: SignedRequest, deadline: float) -> Reply:
        """No more attempts: ask the gateway what became of the order."""
        try:
            state = await self._order_reply(order.uuid)
        except GatewayTimeout:
            raise OutcomeUnknown(
                order.uuid, "the gateway did not answer; ask later with get_order()"
            ) from None
        if state is None:
            raise GatewayTimeout(
                f"the gateway did not answer {order.action} {order.uuid} in time, and it does "
                "not have the order: nothing was executed"
            )
        if state.status is Status.PENDING:
            settled = await self._await_pending(order.uuid, deadline)
            if settled is None:
                raise GatewayTimeout(f"{order.action} {order.uuid} was not executed")
            return settled
        return state

    async def _await_pending(self, uuid: str, deadline: float) -> Reply | None:
        """Poll until the order is settled: its final reply, or ``None`` if the gateway
        reports it was never executed. Raises ``OutcomeUnknown`` at ``deadline``."""
        while _monotonic() < deadline:
            await asyncio.sleep(_PENDING_POLL_S)
            try:
                state = await self._order_reply(uuid)
            except GatewayTimeout:
                continue
            if state is None or state.status is not Status.PENDING:
                return state
        raise OutcomeUnknown(
            uuid, f"still pending when its order_timeout ({self.order_timeout:g} s) ran out"
        )

    async def _order_reply(self, uuid: str) -> Reply | None:
        """GET_ORDER for ``uuid``: the stored reply, or ``None`` if the gateway has none.
        Raises ``GatewayTimeout`` when it did not answer, or refused the question itself
        (``BUSY``): either way nothing is known of the order."""
        request = GetOrder(uuid=new_uuid(), timestamp=self._now(), order_uuid=uuid)
        reply = await self._answer(request)
        if reply.error_code == ErrorCode.ORDER_NOT_FOUND:
            return None
        if reply.order_uuid is None:  # not an answer about the order
            raise GatewayTimeout(
                f"the gateway did not answer GET_ORDER about {uuid}: {reply.error_code} "
                f"{reply.error_msg or ''}".rstrip()
            )
        return reply


def _valid(kind: type[RequestT], /, **fields: Any) -> RequestT:
    """A market-data request, checked as the gateway will check it (``InvalidRequest``)."""
    try:
        return _checked(kind, **fields)
    except InvalidOrder as exc:
        raise InvalidRequest(exc.field, exc.message) from None


def _valid_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not 0 < len(symbol) <= 29:
        raise InvalidRequest("symbol", f"{symbol!r} is not a symbol name (1-29 characters)")
    return symbol


def _exact(symbol: str) -> str:
    """``symbol`` as a group that selects it alone: a name, not a mask."""
    if any(mark in _valid_symbol(symbol) for mark in "*,!"):
        raise InvalidRequest("symbol", f"{symbol!r} is a mask, not a symbol: give it as group=")
    return symbol


def _utc(times: Callable[[R], R], record: R | None) -> R | None:
    return None if record is None else times(record)


def _tick_of(event: Event) -> Tick | None:
    return event.tick


def _bar_of(event: Event) -> Bar | None:
    return event.bar


def _event_itself(event: Event) -> Event:
    return event


def _state_of(event: Event) -> Event | None:
    return event if event.kind == "state" else None


def _monotonic() -> float:
    """The event loop's clock, which ``asyncio.sleep`` and the transport's timeouts use too:
    an order's deadline is kept on it (a test on a virtual-time loop then checks the schedule,
    not the machine's speed)."""
    return asyncio.get_running_loop().time()


def _risk_passed(order: Open | Place) -> None:
    """``[RISK_PASS]``, written before the order can leave."""
    record(
        AuditEvent.RISK_PASS,
        f"{order.action} {order.type.value} {order.volume:g} {order.symbol}",
        uuid=order.uuid,
        symbol=order.symbol,
        side=order.type.value,
        volume=order.volume,
    )


def _always_allowed(order: Close | CloseBy | ModifyPosition | ModifyOrder | Cancel) -> None:
    """``[RISK_PASS]`` for a command that adds no exposure: no limit applies to it."""
    record(
        AuditEvent.RISK_PASS,
        f"{order.action} #{order.ticket} (adds no exposure: always allowed)",
        uuid=order.uuid,
        ticket=order.ticket,
    )


def _filling(value: Filling | str | None) -> str | None:
    """A filling policy as the wire takes it: ``"ioc"`` as well as ``Filling.IOC``."""
    return None if value is None else value.upper()


def _expiration(value: Expiry, times: ServerTimes) -> str | int | None:
    """An expiration as the wire takes it: ``GTC``, ``DAY`` or epoch seconds on the terminal's
    clock (``value``: UTC)."""
    if value is None or isinstance(value, str):
        return value  # the contract names what else is allowed
    try:
        seconds = times.to_server(epoch(value, "expiration"))
    except InvalidRequest as exc:
        raise InvalidOrder(exc.field, exc.message) from None
    assert seconds is not None
    return int(seconds)


def _sent(order: SignedRequest, attempt: int, after: str | None) -> None:
    """``[ZMQ_SENT]``, written once the attempt is in the socket (and why it was made)."""
    sent = f"{order.action} attempt {attempt}"
    if after is None:
        record(AuditEvent.ZMQ_SENT, sent, uuid=order.uuid, attempt=attempt)
    else:
        record(
            AuditEvent.ZMQ_SENT,
            f"{sent}, after {after}",
            uuid=order.uuid,
            attempt=attempt,
            after=after,
        )


def _rejection(reply: Reply) -> OrderRejected:
    return OrderRejected(
        reply.error_code or ErrorCode.INTERNAL.value,
        reply.error_msg or "rejected",
        uuid=reply.order_uuid or reply.uuid,
        retcode=reply.retcode,
        **terminal_answer(reply),
    )
