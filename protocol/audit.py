"""The audit trail's record: its shape and its event names, the same on both sides.

Each side writes its own JSON-lines file (the node's strategy, the gateway), and one order's
life is followed across both by its uuid, so the record is part of the contract like the
messages are: one JSON object per line with ``time`` (ISO 8601, UTC), ``level``, ``source``
(``node`` or ``gateway``), ``event`` (an ``AuditEvent``), ``uuid`` (``null`` for events not
about one order), the event's own fields, and ``message`` (``[EVENT] text``). No I/O here:
``audit_line`` only builds the bytes.

>>> import datetime as dt
>>> at = dt.datetime(2026, 12, 5, 9, 30, tzinfo=dt.UTC)
>>> line = audit_line(AuditEvent.ZMQ_SENT, "OPEN attempt 1", time=at, uuid="u1", attempt=1)
>>> for key, value in msgspec.json.decode(line).items():
...     print(f"{key}: {value}")
time: 2026-12-05T09:30:00+00:00
level: INFO
source: node
event: ZMQ_SENT
uuid: u1
attempt: 1
message: [ZMQ_SENT] OPEN attempt 1
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Final, Literal

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import Reply, Status

__all__ = ["AuditEvent", "AuditSource", "audit_line", "outcome_record"]

AuditSource = Literal["node", "gateway"]
_encoder: Final = msgspec.json.Encoder()


class AuditEvent(StrEnum):
    """What a record says happened (OPERATIONS.md, "Reading the audit trail")."""

    # An order on the node, in the order they happen.
    RISK_PASS = "RISK_PASS"  # the node's risk check passed: it is about to be sent
    RISK_REJECTED = "RISK_REJECTED"  # the node refused it; nothing was sent
    ZMQ_SENT = "ZMQ_SENT"  # in the socket (once per attempt)
    # An order at the gateway.
    ORDER_RECEIVED = "ORDER_RECEIVED"  # admitted and journaled
    DUPLICATE = "DUPLICATE"  # answered with the stored (or the history's) reply
    PENDING = "PENDING"  # in flight, or being reconciled
    RECONCILING = "RECONCILING"  # still active in the terminal: looked up again later
    RECONCILED = "RECONCILED"  # its outcome found in the terminal's history, or its absence
    # How an order ended, on either side.
    MT5_FILLED = "MT5_FILLED"  # the terminal executed it
    MT5_DONE = "MT5_DONE"  # the terminal carried it out with no deal (placed, modified...)
    MT5_REJECTED = "MT5_REJECTED"  # the terminal refused it (its retcode says why)
    REJECTED = "REJECTED"  # the gateway refused it before the terminal saw it
    NOT_EXECUTED = "NOT_EXECUTED"  # nothing reached the terminal (lost, unreachable)
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # it may or may not have executed
    # The kill switch and the gateway's own housekeeping.
    HALTED = "HALTED"
    RESUMED = "RESUMED"
    THROTTLED = "THROTTLED"  # a flood of lines of one kind, counted instead of written
    # The node's link to the gateway.
    HEARTBEAT_FAIL = "HEARTBEAT_FAIL"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    CIRCUIT_CLOSED = "CIRCUIT_CLOSED"


# The terminal's own verdicts, and the gateway's by what the terminal holds (its quote, its
# symbols and their terms, its orders); every other refusal came from the gateway alone.
_TERMINAL_VERDICTS: Final = frozenset(
    {
        ErrorCode.MT5_REJECTED,
        ErrorCode.POSITION_NOT_FOUND,
        ErrorCode.ORDER_NOT_FOUND,
        ErrorCode.SYMBOL_NOT_FOUND,
        ErrorCode.SYMBOL_AMBIGUOUS,
        ErrorCode.INVALID_PRICE,
        ErrorCode.INVALID_EXPIRATION,
        ErrorCode.INVALID_VOLUME,
        ErrorCode.NO_CHANGES,
    }
)


def outcome_record(action: str, reply: Reply) -> tuple[AuditEvent, str, str, dict[str, Any]]:
    """How an order's final reply is recorded, on either side: ``(event, message, level,
    fields)``. A fill is ``MT5_FILLED``; a refusal ``MT5_REJECTED`` when the terminal refused
    it, else ``REJECTED`` (the gateway's, before the terminal).

    >>> fill = Reply(uuid="u", action="OPEN", status=Status.FILLED, timestamp=0, ticket=7,
    ...              deal=9, volume=0.1, price=1.1, duplicate=True)
    >>> event, message, level, fields = outcome_record("OPEN", fill)
    >>> print(event, message, level, sep=" | ")
    MT5_FILLED | OPEN ticket=7 volume=0.1 price=1.1 (duplicate) | INFO
    """
    if reply.status is Status.FILLED:
        message = f"{action} ticket={reply.ticket} volume={reply.volume:g} price={reply.price:g}"
        fields = {"ticket": reply.ticket, "deal": reply.deal, "volume": reply.volume}
        return (
            AuditEvent.MT5_FILLED,
            message + (" (duplicate)" if reply.duplicate else ""),
            "INFO",
            {**fields, "price": reply.price},
        )
    if reply.status is Status.OK:
        message = f"{action} ticket={reply.ticket}"
        if reply.order is not None and reply.order != reply.ticket:
            message += f" order={reply.order}"
        fields = {"ticket": reply.ticket, "order": reply.order}
        return (
            AuditEvent.MT5_DONE,
            message + (" (duplicate)" if reply.duplicate else ""),
            "INFO",
            fields,
        )
    terminal = reply.error_code in _TERMINAL_VERDICTS
    retcode = f" (retcode {reply.retcode})" if reply.retcode is not None else ""
    return (
        AuditEvent.MT5_REJECTED if terminal else AuditEvent.REJECTED,
        f"{action}: {reply.error_code}: {reply.error_msg}{retcode}",
        "WARNING",
        {"error_code": reply.error_code, "retcode": reply.retcode},
    )


def audit_line(
    event: AuditEvent,
    message: str,
    *,
    time: dt.datetime,
    uuid: str | None = None,
    level: str = "INFO",
    source: AuditSource = "node",
    **fields: Any,
) -> bytes:
    """One record as its JSON line (without the newline)."""
    return _encoder.encode(
        {
            "time": time.isoformat(),
            "level": level,
            "source": source,
            "event": event,
            "uuid": uuid,
            **fields,
            "message": f"[{event}] {message}",
        }
    )
