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

__all__ = ["AuditEvent", "AuditSource", "audit_line"]

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
