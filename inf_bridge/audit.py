"""The node's audit trail: one record per stage of every order, each with its uuid.

Stages of an order on the node, in the order they happen: ``[RISK_PASS]`` (before the send)
or ``[RISK_REJECTED]`` (the node refused it, nothing sent); ``[ZMQ_SENT]`` (once per attempt,
once it is in the socket); then ``[MT5_FILLED]``, ``[MT5_REJECTED]`` (the terminal's verdict),
``[REJECTED]`` (the gateway's refusal, before the terminal), ``[NOT_EXECUTED]`` or
``[OUTCOME_UNKNOWN]``. And for the link itself ``[HEARTBEAT_FAIL]``, ``[CIRCUIT_OPEN]``,
``[CIRCUIT_CLOSED]``. The record's shape and the event names are the contract's
(``protocol.audit``); the files are written by ``plumbing.audit``:

    trail = add_audit_file("audit/orders.jsonl")   # every record; rotated at 50 MB, kept 90 days
    ...
    trail.close()
"""

from __future__ import annotations

from functools import partial

from plumbing.audit import AuditFile, add_audit_file
from plumbing.audit import record as _record
from protocol.audit import AuditEvent

__all__ = ["AuditEvent", "AuditFile", "add_audit_file", "record"]

record = partial(_record, source="node")
