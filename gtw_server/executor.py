"""Exactly-once execution of the commands: OPEN, CLOSE, PLACE, MODIFY_POSITION, MODIFY_ORDER,
CANCEL and CLOSE_BY.

The request's uuid is the idempotency key. For each order, in this sequence:

1. ``admit``, synchronously, so that no other message can slip in between: the risk
   signature is verified (before anything else, so a retry must be re-signed); the gateway's
   own gate is asked (halted, limits, connection, queue); the request is journaled unless the
   journal knows its uuid, which is then answered from the journal whatever the gate said:
   executed -> the stored reply with ``duplicate: true``; in flight or awaiting
   reconciliation -> ``PENDING``; used for a different request -> ``DUPLICATE_UUID``. A gate
   that refuses a new uuid journals nothing.
2. ``execute``: the order is sent to the terminal with a comment that starts with the uuid's
   tag, then its reply is journaled. Only a terminal verdict (a fill, or the terminal's
   refusal) is kept; when the terminal was unreachable nothing happened, the entry is
   dropped, and the client may retry with the same uuid. The verdict is journaled, and its
   audit line written, after the reply has gone (``record``), by the next ``flush``: once
   the terminal has the next call, or ``_FLUSH_AFTER_S`` later. Until then the journal
   answers a retry from memory.
3. When the worker died or the connection broke mid-order, the outcome is unknown: the entry
   stays open, the client gets ``PENDING``, and ``reconcile`` later settles it from the
   terminal's history (found -> its real result; absent -> the uuid is free again). A
   modification or a cancellation leaves no tagged order or deal behind: it is settled by
   whether the terminal's state is what it asked for (``CommandDesk.settled``).

A timeout is never reported as a rejection, and nothing executes twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Final

import msgspec
from loguru import logger

from gtw_server.adapter import (
    DEFAULT_DEVIATION,
    CloseOrder,
    FindOrders,
    OpenOrder,
    OrderOutcome,
    filling_constant,
)
from gtw_server.audit import audit
from gtw_server.commands import STATEFUL, Change, Instruction
from gtw_server.errors import (
    JournalError,
    JournalUnavailable,
    TerminalDisconnected,
    TerminalError,
    WorkerCrashed,
    WorkerUnavailable,
)
from gtw_server.journal import Journal, JournalEntry
from gtw_server.ledger import HistoryLedger
from gtw_server.operations import CLOSE, COMMAND, FIND, OPEN, SETTLED
from gtw_server.replies import outcome_reply, pending, rejected
from gtw_server.tagging import order_tag, terminal_comment
from gtw_server.throttle import Throttle
from gtw_server.worker import TerminalWorker
from plumbing.audit import write_later
from protocol import (
    AuditEvent,
    Cancel,
    Close,
    CloseBy,
    Command,
    ErrorCode,
    Halt,
    ModifyOrder,
    ModifyPosition,
    Open,
    Place,
    Reply,
    Resume,
    SignatureError,
    SignedRequest,
    Status,
    canonical,
    decode_reply,
    decode_request,
    encode,
    outcome_record,
    verify,
)
from protocol.symbol_names import same_symbol

__all__ = ["OUTCOMES_SHOWN", "OrderExecutor", "close_order", "fingerprint", "open_order"]

_NOT_EXECUTED: Final = "; nothing was executed: retry later with the same uuid"
# The longest a verdict waits to be journaled when no other call comes to flush it.
_FLUSH_AFTER_S: Final = 0.005
OUTCOMES_SHOWN: Final = "order outcomes"  # the ``shown`` throttle's kind


def fingerprint(request: SignedRequest) -> bytes:
    """What makes two requests with one uuid "the same": the signed fields, not the time."""
    return hashlib.sha256(canonical(request, 0)).digest()


class OrderExecutor:
    """Runs the commands exactly once, with the journal and the terminal worker."""

    def __init__(
        self,
        journal: Journal,
        worker: TerminalWorker,
        *,
        secret: bytes | None,
        signature_ttl_ms: int,
        ledger: HistoryLedger,
        operator_secret: bytes | None = None,
        settle_s: float = 1.0,
        on_authenticated: Callable[[], None] | None = None,
        throttle: Throttle | None = None,
        shown: Throttle | None = None,
        symbols: Mapping[str, str] | None = None,
    ) -> None:
        """``secret`` verifies orders (``None``: signatures are not checked);
        ``operator_secret``, when given, is the only key that signs HALT and RESUME.
        ``on_authenticated`` is told of every request whose signature verified. ``ledger``
        holds the tags of the terminal's recent history.
        ``throttle`` limits the lines written for refusals and replays, per error code;
        ``shown``, the outcomes logged on the console (the audit file has every one).
        ``symbols`` is the ``[gateway] symbols`` map (to know a resolved order as its own).
        """
        self.journal = journal
        self.ledger = ledger
        self._throttle = throttle
        self._shown = shown
        self.worker = worker
        self._secret = secret
        self._operator_secret = operator_secret
        self._on_authenticated = on_authenticated
        self._ttl_ms = signature_ttl_ms
        # How long an order may still be landing in the terminal after its call was lost.
        self._settle_s = settle_s
        self._in_flight: set[str] = set()
        self._symbols = dict(symbols or {})
        self._resolved: set[str] = set()  # names whose broker's name was logged
        self._verdicts: dict[str, Reply] = {}  # replies being sent, not yet recorded
        self._flush_timer: asyncio.TimerHandle | None = None
        self._unjournaled: set[str] = set()  # HALTs obeyed though the journal failed
        self._reconcile_lock = asyncio.Lock()
        self._needs_reconcile = False  # an order's outcome became unknown

    @property
    def needs_reconcile(self) -> bool:
        """Whether some order's outcome is unknown: ``reconcile()`` should run."""
        return self._needs_reconcile

    def mark_unknown(self) -> None:
        """An order's outcome became unknown (outside the executor): reconcile it."""
        self._needs_reconcile = True

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def admit(
        self,
        request: SignedRequest,
        gate: Callable[[SignedRequest], Reply | None] | None = None,
    ) -> Reply | None:
        """The immediate reply to ``request`` (refused, duplicate, pending), or ``None`` when
        it was admitted: journaled, and to be passed to ``execute`` right away.

        ``gate`` is the gateway's own refusal (halted, busy, disconnected): a uuid the
        journal knows still gets its stored reply (or PENDING) when the gate is shut.
        """
        uuid = request.uuid
        tag = order_tag(uuid)
        try:
            reply = self._authenticate(request)
            refusal = gate(request) if gate and reply is None else None
            if reply is None and refusal is None:
                # One write for a new uuid (nothing is read first); a known one is not written.
                try:
                    known = self.journal.record_request(
                        uuid, request.action, fingerprint(request), tag, encode(request)
                    )
                except JournalUnavailable:
                    # Nothing can be written now, but reads work: a known uuid still gets its
                    # stored reply (or PENDING), never "nothing was executed".
                    known = self.journal.get(uuid)
                    if known is None:
                        raise
                reply = None if known is None else self._answer(request, known)
            elif reply is None:
                known = self.journal.get(uuid)
                reply = refusal if known is None else self._answer(request, known)
        except JournalError as exc:
            if not isinstance(request, Halt):
                reply = rejected(
                    uuid, request.action, ErrorCode.JOURNAL_UNAVAILABLE, f"{exc}{_NOT_EXECUTED}"
                )
            else:
                # A HALT is never refused for want of a journal: it only makes things safer,
                # and a replay of it halts again, harmlessly.
                self._unjournaled.add(uuid)
                audit(
                    AuditEvent.ORDER_RECEIVED,
                    f"HALT, obeyed without being journaled ({exc})",
                    uuid=uuid,
                    level="WARNING",
                    action=request.action,
                )
                return None
        if reply is None:
            self._in_flight.add(uuid)
            # DEBUG: on the console only the outcome shows; the audit file has both. An
            # order's is written once the terminal has it (``flush``), in order with the rest.
            audit(
                AuditEvent.ORDER_RECEIVED,
                _describe(request),
                uuid=uuid,
                level="DEBUG",
                action=request.action,
                tag=tag,
                later=isinstance(request, Command),
            )
            if isinstance(request, Command):
                self._flush_soon()
        else:
            self._audit_answer(request, reply)
        return reply

    def _audit_answer(self, request: SignedRequest, reply: Reply) -> None:
        """The audit line for an immediate answer: a refusal, a replay, a PENDING."""
        if reply.duplicate:
            kind, event = "replays of a stored reply", AuditEvent.DUPLICATE
            message, level = f"{request.action}: the stored {reply.status} reply", "INFO"
        elif reply.status is Status.PENDING:
            kind, event = "replays of an order in flight", AuditEvent.PENDING
            message, level = f"{request.action}: {reply.error_msg}", "INFO"
        else:
            kind, event = f"refusals ({reply.error_code})", AuditEvent.REJECTED
            message = f"{request.action}: {reply.error_code} {reply.error_msg}"
            level = "WARNING"
        if self._throttle is not None and not self._throttle.allow(kind):
            return  # a flood: counted, and summed up in one line (Throttle)
        audit(event, message, uuid=request.uuid, level=level, error_code=reply.error_code)

    def complete(self, request: SignedRequest, reply: Reply) -> Reply:
        """Journal the reply of an admitted request the gateway handled itself (HALT,
        RESUME), so that a replay gets the stored reply and never acts twice."""
        if request.uuid in self._unjournaled:
            self._unjournaled.discard(request.uuid)
            return reply
        self.journal.record_reply(request.uuid, encode(reply))
        self._in_flight.discard(request.uuid)
        return reply

    def _answer(self, request: SignedRequest, entry: JournalEntry) -> Reply:
        """The reply to a request whose uuid the journal already has."""
        if entry.fingerprint != fingerprint(request):
            return rejected(
                request.uuid,
                request.action,
                ErrorCode.DUPLICATE_UUID,
                f"uuid {request.uuid} was already used for a different request",
            )
        if entry.reply is None:
            return pending(request, "this uuid is in flight or being reconciled")
        return msgspec.structs.replace(decode_reply(entry.reply), duplicate=True)

    def _authenticate(self, request: SignedRequest) -> Reply | None:
        """Verify the request's signature with the key that may sign it: the refusal, or
        ``None`` (and ``on_authenticated`` is told)."""
        key = self._secret
        if self._operator_secret is not None and isinstance(request, Halt | Resume):
            key = self._operator_secret
        if key is not None:
            try:
                verify(key, request, now_ms=int(time.time() * 1000), ttl_ms=self._ttl_ms)
            except SignatureError as exc:
                message = exc.message
                if key is self._operator_secret and exc.code is ErrorCode.SIGNATURE_INVALID:
                    message += " (HALT and RESUME must be signed with the operator's secret)"
                return rejected(request.uuid, request.action, exc.code, message)
            if self._on_authenticated is not None:
                self._on_authenticated()
        return None

    async def execute(self, request: Command) -> Reply:
        """Run an admitted ``request`` in the terminal; journal and return its reply."""
        uuid, action = request.uuid, request.action
        try:
            if self.journal.lost(uuid):  # its journal entry was undone with a failed commit
                audit(
                    AuditEvent.NOT_EXECUTED,
                    f"{action}: the journal failed",
                    uuid=uuid,
                    level="ERROR",
                )
                return rejected(
                    uuid,
                    action,
                    ErrorCode.JOURNAL_UNAVAILABLE,
                    f"the journal could not record this order{_NOT_EXECUTED}",
                )
            tag = order_tag(uuid)
            if self.ledger.suspect(tag, uuid):
                answer = await self._from_history(request, tag)
                if answer is not None:
                    return answer
            return await self._send(request, tag)
        finally:
            self._in_flight.discard(uuid)

    async def _send(self, request: Command, tag: str) -> Reply:
        uuid, action = request.uuid, request.action
        try:
            if isinstance(request, Open):
                outcome = await self.worker.call(OPEN, open_order(request, tag))
            elif isinstance(request, Close):
                outcome = await self.worker.call(CLOSE, close_order(request, tag))
            else:
                outcome = await self.worker.call(COMMAND, _instruction(request, tag))
        except (TerminalDisconnected, WorkerUnavailable) as exc:
            return self._not_executed(request, str(exc))
        except (WorkerCrashed, TerminalError) as exc:
            return self._unknown(request, tag, f"the terminal call was interrupted ({exc})")
        if outcome.resolved and isinstance(request, Open | Place):
            self._tell_resolved(request.symbol, outcome.resolved)
        if outcome.fitted:
            logger.debug(
                "{} {}: fitted to the tick size: {}", action, uuid, ", ".join(outcome.fitted)
            )
        if outcome.status == "UNKNOWN":
            return self._unknown(request, tag, outcome.error_msg or "the terminal connection broke")
        reply = outcome_reply(uuid, action, outcome)
        if outcome.error_code == ErrorCode.MT5_DISCONNECTED:  # order_send never reached it
            self.journal.forget(uuid)
            audit(
                AuditEvent.NOT_EXECUTED, f"{action}: {reply.error_msg}", uuid=uuid, level="WARNING"
            )
            return reply
        self._verdicts[uuid] = reply
        self.ledger.claim(tag, uuid)
        return reply

    def _tell_resolved(self, asked: str, name: str) -> None:
        """Say once per name which of the broker's symbols it trades."""
        if asked not in self._resolved:
            self._resolved.add(asked)
            by = "[gateway] symbols" if asked in self._symbols else "its suffix"
            logger.info("symbol {} is {} on this broker (by {})", asked, name, by)

    async def in_history(self, tag: str) -> OrderOutcome | None:
        """The order with ``tag`` in the terminal's recent deals and active orders, if any;
        raises ``TerminalError`` when the history cannot be read."""
        found = await self.worker.call(FIND, FindOrders(tags=[tag], since=self.ledger.since))
        return found.get(tag)

    async def _from_history(self, request: Command, tag: str) -> Reply | None:
        """Look for ``request`` in the terminal's history, where the ledger saw its tag with
        no owner the journal knows: the stored reply if it executed before (never again),
        ``None`` when it is not there (execute it)."""
        uuid, action = request.uuid, request.action
        try:
            outcome = await self.in_history(tag)
        except TerminalError as exc:  # a lookup changes nothing in the terminal
            return self._not_executed(request, f"its history could not be read ({exc})")
        if outcome is None:
            return None
        if outcome.status == "UNKNOWN":
            return self._unknown(request, tag, f"an order with its tag is {outcome.comment}")
        if not _same_order(request, outcome, self._symbols):
            self.journal.forget(uuid)
            audit(
                AuditEvent.REJECTED,
                f"{action}: the history holds another order with tag {tag}",
                uuid=uuid,
                level="WARNING",
                error_code=ErrorCode.DUPLICATE_UUID,
            )
            return rejected(
                uuid,
                action,
                ErrorCode.DUPLICATE_UUID,
                f"the terminal's history holds another order with this uuid's tag {tag} "
                f"(order {outcome.order}, {outcome.action} {outcome.symbol}); nothing was "
                "executed: use a fresh uuid",
            )
        reply = outcome_reply(uuid, action, outcome)
        self.journal.record_reply(uuid, encode(reply))
        self.ledger.claim(tag, uuid)
        audit(
            AuditEvent.DUPLICATE,
            f"{action}: found in the terminal's history (order {outcome.order}), not executed "
            "again; the journal had lost it",
            uuid=uuid,
            level="WARNING",
            ticket=outcome.ticket,
        )
        return msgspec.structs.replace(reply, duplicate=True)

    def _not_executed(self, request: Command, why: str) -> Reply:
        """Nothing reached the terminal: free the uuid for a retry."""
        self.journal.forget(request.uuid)
        audit(
            AuditEvent.NOT_EXECUTED, f"{request.action}: {why}", uuid=request.uuid, level="WARNING"
        )
        return rejected(
            request.uuid, request.action, ErrorCode.MT5_DISCONNECTED, f"{why}{_NOT_EXECUTED}"
        )

    def record(self, uuid: str) -> None:
        """Record the terminal's verdict on ``uuid`` once its reply has been sent: the journal
        answers with it at once, and writes it, with its audit line, at the next ``flush``.

        Sending first, and writing later, takes the verdict's write, commit and audit line
        off the time between one order's reply and the next order, and is safe: until the
        verdict is written the entry stays open, and a crash in between is settled by
        reconciliation with the same result (the fill is in the terminal's history). A
        terminal's refusal leaves no trace there (reconciliation would free the uuid for a
        retry to run): it is written at once, as before."""
        reply = self._verdicts.pop(uuid, None)
        if reply is None:
            return
        if reply.status is Status.REJECTED:
            self.journal.record_reply(uuid, encode(reply))
            self.journal.commit()  # now, not at the end of the loop's turn
        else:
            self.journal.record_reply_later(uuid, encode(reply))
        shown = self._shown is None or self._shown.allow(OUTCOMES_SHOWN)
        _audit_outcome(reply, shown)
        self._flush_soon()

    def flush(self) -> None:
        """Write what was recorded since the last flush: the verdicts into the journal
        (committed with the loop turn's group), then the audit lines. Run when the terminal
        has a call and the loop would only wait for it, and ``_FLUSH_AFTER_S`` after a
        record at the latest."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.journal.flush()
        write_later()

    def _flush_soon(self) -> None:
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(_FLUSH_AFTER_S, self.flush)

    def _unknown(self, request: Command, tag: str, why: str) -> Reply:
        """The order may or may not have executed: keep it open for reconciliation."""
        self.ledger.claim(tag, request.uuid)
        audit(
            AuditEvent.OUTCOME_UNKNOWN,
            f"{request.action}: {why}; reconciling",
            uuid=request.uuid,
            level="ERROR",
        )
        self._needs_reconcile = True
        return pending(request, f"{why}; its outcome is being reconciled")

    async def _look_up(self, entries: list[JournalEntry]) -> dict[str, OrderOutcome]:
        """The outcome of each entry found in the terminal, by tag: from the tagged orders and
        deals, or (a modification, a cancellation) from the state it asked for."""
        stateful = [e for e in entries if e.action in STATEFUL]
        tagged = [e for e in entries if e.action not in STATEFUL]
        found: dict[str, OrderOutcome] = {}
        if tagged:
            query = FindOrders(tags=[e.tag for e in tagged], since=tagged[0].received_at)
            found = await self.worker.call(FIND, query)
        if stateful:
            asked = [_instruction(_change(e.request), e.tag) for e in stateful]
            verdicts = await self.worker.call(SETTLED, asked)
            found |= {e.tag: v for e, v in zip(stateful, verdicts, strict=True) if v is not None}
        return found

    async def reconcile(self) -> int:
        """Settle every journaled order whose outcome is unknown, from the terminal's history.

        Found -> its real result is journaled; still active in the terminal -> looked up again
        later; absent -> the entry is dropped, so the client's retry with the same uuid
        executes. Returns how many entries were settled.
        """
        async with self._reconcile_lock:
            self._needs_reconcile = False
            entries = [e for e in self.journal.unresolved() if e.uuid not in self._in_flight]
            if not entries:
                return 0
            settled = len(entries)
            await asyncio.sleep(self._settle_s)
            try:
                found = await self._look_up(entries)
            except TerminalError:
                self._needs_reconcile = True
                raise
            for entry in entries:
                if entry.uuid in self._in_flight:
                    continue
                outcome = found.get(entry.tag)
                if outcome is not None and outcome.status == "UNKNOWN":
                    self._needs_reconcile = True  # the next look settles it
                    settled -= 1
                    audit(
                        AuditEvent.RECONCILING,
                        f"{entry.action}: {outcome.comment}; looking again",
                        uuid=entry.uuid,
                        level="WARNING",
                    )
                elif outcome is None:
                    self.journal.forget(entry.uuid)
                    audit(
                        AuditEvent.RECONCILED,
                        f"{entry.action}: not executed; the uuid is free again",
                        uuid=entry.uuid,
                        executed=False,
                    )
                else:
                    reply = outcome_reply(entry.uuid, entry.action, outcome)
                    self.journal.record_reply(entry.uuid, encode(reply))
                    audit(
                        AuditEvent.RECONCILED,
                        f"{entry.action}: executed, ticket {outcome.ticket}",
                        uuid=entry.uuid,
                        executed=True,
                        ticket=outcome.ticket,
                    )
            return settled


def _same_order(request: Command, outcome: OrderOutcome, symbols: Mapping[str, str]) -> bool:
    """Whether an order or deal found by ``request``'s tag is its own, not another's with that
    tag."""
    if isinstance(request, Open | Place):
        placed = outcome.action == "PLACE"
        kind = placed if isinstance(request, Place) else not placed and outcome.side == request.type
        return kind and same_symbol(request.symbol, outcome.symbol or "", symbols)
    if isinstance(request, CloseBy):
        return outcome.ticket in (request.ticket, request.by)
    if isinstance(request, Close):
        return outcome.ticket == request.ticket
    return False  # a stateful command leaves no tagged trace: a tag found is another's


def _change(request: bytes) -> Change:
    """The journaled request of a stateful command."""
    decoded = decode_request(request)
    assert isinstance(decoded, ModifyPosition | ModifyOrder | Cancel)
    return decoded


def _describe(request: SignedRequest) -> str:
    if isinstance(request, Open):
        return f"OPEN {request.type} {request.volume:g} {request.symbol}"
    if isinstance(request, Close):
        volume = "all" if request.volume is None else f"{request.volume:g}"
        return f"CLOSE #{request.ticket} ({volume})"
    if isinstance(request, Place):
        return f"PLACE {request.type} {request.volume:g} {request.symbol} at {request.price:g}"
    if isinstance(request, CloseBy):
        return f"CLOSE_BY #{request.ticket} by #{request.by}"
    if isinstance(request, ModifyPosition | ModifyOrder | Cancel):
        return f"{request.action} #{request.ticket}"
    return request.action


def _audit_outcome(reply: Reply, shown: bool) -> None:
    # At INFO: an operator watching the console must see the fills (written at the next
    # flush, off the order's path), and a count of those beyond a few a second: a line costs
    # the loop more than the rest of an order's records.
    event, message, level, fields = outcome_record(reply.action or "", reply)
    audit(event, message, uuid=reply.uuid, level=level, console=shown, later=True, **fields)


def _instruction(request: Change, tag: str) -> Instruction:
    """What the worker is sent for a command other than OPEN and CLOSE: the signature stays
    here, and a PLACE's own comment follows the tag."""
    comment = terminal_comment(tag, request.comment) if isinstance(request, Place) else tag
    return Instruction(
        request=msgspec.structs.replace(request, risk_signature=None), comment=comment
    )


def open_order(request: Open, tag: str) -> OpenOrder:
    """What the worker is sent for an OPEN (the benchmark's unsafe design sends the same)."""
    return OpenOrder(
        symbol=request.symbol,
        side=request.type,
        volume=request.volume,
        comment=terminal_comment(tag, request.comment),
        price=request.price,
        sl=request.sl,
        tp=request.tp,
        deviation=DEFAULT_DEVIATION if request.deviation is None else request.deviation,
        magic=request.magic or 0,
        filling=filling_constant(request.type_filling),
        volume_down=request.volume_rounding == "down",
    )


def close_order(request: Close, tag: str) -> CloseOrder:
    """What the worker is sent for a CLOSE."""
    return CloseOrder(
        ticket=request.ticket,
        comment=terminal_comment(tag, request.comment),
        volume=request.volume,
        deviation=DEFAULT_DEVIATION if request.deviation is None else request.deviation,
        magic=request.magic,
        filling=filling_constant(request.type_filling),
        volume_down=request.volume_rounding == "down",
    )
