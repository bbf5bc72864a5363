"""Request routing: each message the transport drains, decoded and answered.

``RequestRouter.on_message`` decodes a message in one msgspec call, refuses a bad one at once,
and looks its handler up by request type in one table. A handler returns either the reply
(PING, GET_ORDER, HALT, RESUME and every refusal are answered in place, with no ``await``) or
the coroutine that will produce it (work for the terminal), which becomes a task whose reply is
sent on the envelope the request came with. Replies go out through ``send``, which also counts
them in the metrics.

A new request type is one entry in ``_handlers`` and its handler.
"""

from __future__ import annotations

import asyncio
import time
import typing
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

import anyio
import msgspec
from loguru import logger

from gtw_server.config import Config
from gtw_server.errors import EventLogError, TerminalError
from gtw_server.event_log import EventLog
from gtw_server.executor import OrderExecutor
from gtw_server.gate import OrderGate, busy
from gtw_server.health import TerminalMonitor
from gtw_server.journal import Journal
from gtw_server.killswitch import KillSwitch
from gtw_server.ledger import HistoryLedger
from gtw_server.metrics import GatewayMetrics
from gtw_server.operations import ACCOUNT, POSITIONS
from gtw_server.reads import Reads, WithBody
from gtw_server.replies import ok, outcome_reply, pending, rejected, terminal_unanswered
from gtw_server.tagging import order_tag
from gtw_server.trade_watch import Snapshot, TradeWatcher
from gtw_server.transport import RouterTransport, split_envelope
from gtw_server.worker import TerminalWorker
from protocol import (
    Account,
    AnyRequest,
    Command,
    DecodeError,
    ErrorCode,
    GatewayInfo,
    GetAccount,
    GetEvents,
    GetOrder,
    GetPositions,
    Halt,
    Open,
    Ping,
    Position,
    Read,
    Reply,
    Resume,
    SignatureError,
    Status,
    decode_reply,
    decode_request,
    encode,
    verify,
)

__all__ = ["RequestRouter"]

_QUERY_SHARE: Final = 4  # queries may hold at most a quarter of max_queue
# Answers with no side effect: a large one the peer has no room for may be refused (BUSY).
_QUERIES: Final = frozenset(
    {"GET_ACCOUNT", "GET_POSITIONS", "GET_EVENTS"}
    | {str(kind.__struct_config__.tag) for kind in typing.get_args(Read)}
)
Work = Coroutine[Any, Any, Reply | WithBody]
# The unsigned terminal work.
QueryT = TypeVar("QueryT", bound=GetAccount | GetPositions | GetOrder | GetEvents | Read)
Handler = Callable[[Any], Reply | Work]


class RequestRouter:
    """Answers every request that reaches the gateway.

    ``seen()`` is called for each request from a client that proved it holds the secret (the
    dead-man's switch); ``info`` is what PING says of the gateway; ``tasks`` holds the requests
    waiting on the terminal (the gate counts them against ``max_queue``).
    """

    def __init__(
        self,
        config: Config,
        *,
        transport: RouterTransport,
        executor: OrderExecutor,
        gate: OrderGate,
        monitor: TerminalMonitor,
        journal: Journal,
        ledger: HistoryLedger,
        killswitch: KillSwitch,
        worker: TerminalWorker,
        reads: Reads,
        watcher: TradeWatcher,
        event_log: EventLog,
        info: GatewayInfo,
        seen: Callable[[], None],
        tasks: set[asyncio.Task[None]],
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._executor = executor
        self._gate = gate
        self._monitor = monitor
        self._journal = journal
        self._ledger = ledger
        self._killswitch = killswitch
        self._worker = worker
        self._reads = reads
        self._watcher = watcher
        self._event_log = event_log
        self.info = info
        self._seen = seen
        self._metrics = metrics
        self.tasks = tasks
        self._received_at = 0.0  # perf_counter() when the message being handled arrived
        self._queries = 0  # GET_ACCOUNT and GET_POSITIONS waiting on the terminal
        # Every command, and every read, by its union: a new one needs no line here.
        self._handlers: dict[type[AnyRequest], Handler] = {
            Ping: self._pong,
            GetOrder: self._order_status,
            **dict.fromkeys(typing.get_args(Command), self._order),
            Halt: self._switch,
            Resume: self._switch,
            GetAccount: self._query,
            GetPositions: self._query,
            **dict.fromkeys(typing.get_args(Read), self._read),
            GetEvents: self._trade_events,
        }

    # -- in ----------------------------------------------------------------------------------

    def on_message(self, frames: list[bytes]) -> None:
        self._received_at = time.perf_counter()
        envelope, body = split_envelope(frames)
        if len(body) != 1:
            message = f"a request is exactly one frame after the envelope; got {len(body)}"
            self.send(envelope, rejected(None, None, ErrorCode.INVALID_REQUEST, message))
            return
        try:
            request = decode_request(body[0])
        except DecodeError as exc:
            self.send(envelope, rejected(exc.uuid, exc.action, exc.code, exc.message))
            return
        if not self._config.gateway.signature_validation:
            self._seen()  # nothing is authenticated: any readable request counts
        try:
            answer = self._handlers[type(request)](request)
        except Exception:
            logger.exception("failed to handle {} {}", request.action, request.uuid)
            answer = rejected(request.uuid, request.action, ErrorCode.INTERNAL, "internal error")
        if isinstance(answer, Reply):
            self.send(envelope, answer)
        else:
            self._spawn(envelope, request, answer)

    # -- out ---------------------------------------------------------------------------------

    def send(
        self, envelope: list[bytes], answer: Reply | WithBody, received_at: float | None = None
    ) -> None:
        """Send ``answer`` (a reply, and the frame of rows that follows it if any);
        ``received_at`` defaults to the arrival of the message being handled."""
        reply, frames = (
            (answer.reply, [encode(answer.reply), answer.body])
            if isinstance(answer, WithBody)
            else (answer, [encode(answer)])
        )
        if not self._transport.send([*envelope, *frames], refusable=reply.action in _QUERIES):
            # A large answer, and the peer has not read its last ones: a short refusal instead.
            reply = rejected(
                reply.uuid,
                reply.action,
                ErrorCode.BUSY,
                "your earlier answers are still unread; ask again shortly",
            )
            self._transport.send([*envelope, encode(reply)])
        if self._metrics is not None:
            started = self._received_at if received_at is None else received_at
            self._metrics.observe_reply(
                reply.action, reply.status.value, time.perf_counter() - started
            )

    async def drain(self, deadline_s: float) -> bool:
        """Let the requests in flight finish and send their replies, for at most
        ``deadline_s``; cancel the rest. True if none was abandoned."""
        if not self.tasks:
            return True
        logger.info("shutting down: finishing {} request(s) in flight", len(self.tasks))
        _, abandoned = await asyncio.wait(set(self.tasks), timeout=deadline_s)
        for task in abandoned:
            task.cancel()
        if abandoned:
            logger.error(
                "{} request(s) did not finish within {} s; they will be reconciled at the next "
                "start",
                len(abandoned),
                deadline_s,
            )
        return not abandoned

    def _spawn(self, envelope: list[bytes], request: AnyRequest, work: Work) -> None:
        task = asyncio.create_task(
            self._reply_when_done(envelope, request, work, self._received_at)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply_when_done(
        self, envelope: list[bytes], request: AnyRequest, work: Work, received_at: float
    ) -> None:
        reply: Reply | WithBody
        try:
            reply = await work
        except Exception:
            logger.exception("failed to handle {} {}", request.action, request.uuid)
            if isinstance(request, Command):
                # It may have executed: never call that a rejection. Reconciliation settles it.
                self._executor.mark_unknown()
                reply = pending(request, "internal error; the outcome is being reconciled")
            else:
                reply = rejected(request.uuid, request.action, ErrorCode.INTERNAL, "internal error")
        self.send(envelope, reply, received_at)
        if isinstance(request, Command):
            self._executor.record(request.uuid)

    # -- the handlers ------------------------------------------------------------------------

    def _pong(self, request: Ping) -> Reply:
        info = self.info
        if self._killswitch.halted:
            info = msgspec.structs.replace(info, halted=True, halt_reason=self._killswitch.reason)
        if trouble := self._monitor.trouble():
            info = msgspec.structs.replace(info, warnings=[*info.warnings, trouble])
        if (offset := self._monitor.offset) is not None:
            info = msgspec.structs.replace(
                info,
                server_offset_s=offset.offset_s,
                server_timezone=offset.zone,
                server_offsets=None if offset.zone else offset.offsets or None,
            )
        reply = ok(request, mt5_connected=self._monitor.connected, gateway=info)
        return self._with_authentication(request, reply)

    def _with_authentication(self, request: Ping, reply: Reply) -> Reply:
        """Say whether a signed PING's signature verified: a node learns at its first beat
        whether the gateway takes its secret, not at its first order."""
        secret = self._config.secret
        if request.risk_signature is None or secret is None:
            return reply
        now_ms = int(time.time() * 1000)
        try:
            verify(secret, request, now_ms=now_ms, ttl_ms=self._config.gateway.signature_ttl_ms)
        except SignatureError as exc:
            return msgspec.structs.replace(
                reply, authenticated=False, auth_error=exc.code.value, error_msg=exc.message
            )
        self._seen()
        return msgspec.structs.replace(reply, authenticated=True)

    def _order_status(self, request: GetOrder) -> Reply | Work:
        entry = self._journal.get(request.order_uuid)
        if entry is None:
            # Not journaled: never executed, or a journal that lost it. Only the terminal's
            # history can tell; a not-found must never be a guess. Unsigned, so a query.
            return self._capped(request, self._order_in_history)
        about = {"order_uuid": entry.uuid, "order_action": entry.action}
        if entry.reply is None:
            return msgspec.structs.replace(
                pending(request, "this order is in flight or being reconciled"), **about
            )
        stored = decode_reply(entry.reply)  # the order's own reply, as the GET_ORDER's
        return msgspec.structs.replace(
            stored, uuid=request.uuid, action=request.action, timestamp=time.time(), **about
        )

    async def _order_in_history(self, request: GetOrder) -> Reply:
        """GET_ORDER of a uuid the journal does not know, answered from the terminal's deals
        and active orders (a rare path: one terminal call)."""
        uuid = request.order_uuid
        try:
            outcome = await self._executor.in_history(order_tag(uuid))
        except TerminalError as exc:
            return msgspec.structs.replace(
                pending(request, f"the terminal's history cannot be read now ({exc}); ask again"),
                order_uuid=uuid,
            )
        if outcome is None:
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.ORDER_NOT_FOUND,
                f"no signed request (an order, a command, HALT or RESUME) with uuid {uuid} is "
                "known: not in the "
                f"journal, nor in the terminal's history of the last "
                f"{self._ledger.lookback_s / 3600:g} h",
            )
        about = {"order_uuid": uuid, "order_action": outcome.action}
        if outcome.status == "UNKNOWN":
            return msgspec.structs.replace(
                pending(request, f"an order with its tag is {outcome.comment}"), **about
            )
        # Executed, and the journal lost it (a retry of it would be answered the same way).
        reply = outcome_reply(request.uuid, request.action, outcome)
        return msgspec.structs.replace(reply, **about)

    def _order(self, request: Command) -> Reply | Work:
        if problem := request.problem():
            return rejected(request.uuid, request.action, ErrorCode.INVALID_REQUEST, problem)
        reply = self._executor.admit(request, self._gate.refusal)
        if reply is not None:
            return reply
        # Counted once admitted and journaled (admit may raise after the gate passed); nothing
        # awaits in between, so the next request's gate sees it.
        if isinstance(request, Open):
            self._gate.opening += 1
        return self._execute(request)

    async def _execute(self, request: Command) -> Reply:
        try:
            reply = await self._executor.execute(request)
        finally:
            if isinstance(request, Open):
                self._gate.opening -= 1
        if reply.error_code == ErrorCode.MT5_DISCONNECTED:
            self._monitor.lost(reply.error_msg or "")
        elif isinstance(request, Open) and reply.status is Status.FILLED:
            self._monitor.filled_open()
        return reply

    def _switch(self, request: Halt | Resume) -> Reply:
        refused = self._executor.admit(request)
        return refused or self._executor.complete(request, self._throw(request))

    def _throw(self, request: Halt | Resume) -> Reply:
        """Throw the kill switch one way or the other."""
        if isinstance(request, Halt):
            self._killswitch.halt(request.reason or "HALT from a client", uuid=request.uuid)
        else:
            self._killswitch.resume(uuid=request.uuid)
        return ok(request, halted=self._killswitch.halted)

    def _query(self, request: GetAccount | GetPositions) -> Reply | Work:
        """From the trade watcher's last look, at once, when it was asked for after
        ``request.after`` (the client's last order); or, asked ``fresh`` (or before that
        look, or for a symbol name not resolved by then), from the terminal within
        ``read_timeout_ms``."""
        snapshot = self._watcher.snapshot
        if (
            snapshot is not None
            and not request.fresh
            and (request.after is None or snapshot.asked_at >= request.after)
            and (reply := _from_snapshot(request, snapshot)) is not None
        ):
            return reply
        return self._capped(request, self._ask_terminal)

    def _trade_events(self, request: GetEvents) -> Reply | Work:
        return self._capped(request, self._events_after)

    async def _events_after(self, request: GetEvents) -> Reply:
        log = self._event_log
        try:
            page = await anyio.to_thread.run_sync(log.since, request.since, request.limit)
        except EventLogError as exc:
            logger.warning("GET_EVENTS {} failed: {}", request.uuid, exc)
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.BUSY,
                "the event log cannot be read now; ask again shortly",
            )
        return ok(
            request,
            events=page.events,
            log=log.id,
            first_seq=page.first_seq,
            last_seq=page.last_seq,
        )

    def _capped(self, request: QueryT, ask: Callable[[QueryT], Work]) -> Reply | Work:
        """``ask(request)``, unless queries already hold their share of the queue: they are
        unsigned, so a flood of them (from anyone who reaches the port) must not keep signed
        orders out."""
        limit = max(1, self._config.gateway.max_queue // _QUERY_SHARE)
        if self._gate.full or self._queries >= limit:
            return busy(request)
        self._queries += 1
        return self._counted(ask(request))

    def _read(self, request: Read) -> Reply | Work:
        return self._reads.refusal(request) or self._capped(request, self._reads.answer)

    async def _counted(self, work: Work) -> Reply | WithBody:
        try:
            return await work
        finally:
            self._queries -= 1

    async def _ask_terminal(self, request: GetAccount | GetPositions) -> Reply:
        """The terminal's answer, if it comes within ``read_timeout_ms`` (the call is left to
        finish: a worker call is not taken back); else the last look's, with its age."""
        call = asyncio.ensure_future(self._read_now(request))
        call.add_done_callback(_consumed)
        timeout = self._config.gateway.read_timeout_ms / 1000
        try:
            answer = await asyncio.wait_for(asyncio.shield(call), timeout)
        except TimeoutError:
            snapshot = self._watcher.snapshot
            if snapshot is not None and (reply := _from_snapshot(request, snapshot)) is not None:
                return reply
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.BUSY,
                f"the terminal did not answer within {timeout * 1000:g} ms "
                "([gateway] read_timeout_ms), and no look has read this yet; ask again",
            )
        except TerminalError as exc:
            logger.warning("{} {} failed: {}", request.action, request.uuid, exc)
            return terminal_unanswered(request)
        if isinstance(answer, list):
            return ok(request, positions=answer, age_ms=0.0)
        return ok(request, account=answer, age_ms=0.0)

    async def _read_now(self, request: GetAccount | GetPositions) -> Account | list[Position]:
        if isinstance(request, GetAccount):
            return await self._worker.call(ACCOUNT, None)
        return await self._worker.call(POSITIONS, request.symbol)


def _from_snapshot(request: GetAccount | GetPositions, snapshot: Snapshot) -> Reply | None:
    """The answer of the last look, or ``None`` for a symbol it cannot select yet."""
    age = round(snapshot.age_ms(), 3)
    if isinstance(request, GetAccount):
        return ok(request, account=snapshot.account, age_ms=age)
    positions = snapshot.positions_of(request.symbol)
    return None if positions is None else ok(request, positions=positions, age_ms=age)


def _consumed(call: asyncio.Future[Any]) -> None:
    """Retrieve a call's error nobody waited for (the reply had gone by then)."""
    if not call.cancelled():
        call.exception()
