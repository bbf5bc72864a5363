"""The gateway's side of the audit trail: the same records as the node's (``protocol.audit``),
marked ``"source": "gateway"``, so that one order's life can be followed by its uuid across the
node's file and the gateway's."""

from __future__ import annotations

from functools import partial

from plumbing.audit import add_audit_file, record

__all__ = ["add_gateway_audit_file", "audit"]

audit = partial(record, source="gateway")
add_gateway_audit_file = partial(add_audit_file, source="gateway")
