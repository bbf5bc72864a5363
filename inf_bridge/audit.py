"""The audit trail: one log line per stage of every order, each with its uuid.

Stages: ``[RISK_PASS]`` or ``[RISK_REJECT]``, ``[ZMQ_SENT]`` (once per attempt), then
``[MT5_FILLED]`` or ``[MT5_REJECTED]`` (or ``[OUTCOME_UNKNOWN]``); and for the link itself
``[HEARTBEAT_FAIL]``, ``[CIRCUIT_OPEN]``, ``[CIRCUIT_CLOSED]``. They are ordinary loguru
records (so they show wherever the application sends its logs), marked ``audit``, and
``add_audit_file`` writes them, and only them, as JSON lines for audits::

    add_audit_file("audit/orders.jsonl")   # rotated at 50 MB, kept 90 days

Nothing secret is ever logged: not the shared secret, not a signature.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import msgspec
from loguru import logger

__all__ = ["add_audit_file", "record"]

_audit: Final = logger.bind(audit=True)
_json: Final = msgspec.json.Encoder()


def record(
    event: str,
    message: str,
    *,
    uuid: str | None = None,
    level: str = "INFO",
    source: str = "node",
    **fields: Any,
) -> None:
    """Log one audit event, e.g. ``record("MT5_FILLED", "ticket 7", uuid=u, ticket=7)``.

    ``source`` says which side wrote it: ``node`` (this client) or ``gateway``.
    """
    _audit.bind(event=event, uuid=uuid, source=source, fields=fields).log(
        level, "[{}] {}", event, message
    )


def _json_line(entry: Any) -> str:
    extra = entry["extra"]
    line = {
        "time": entry["time"].isoformat(),
        "level": entry["level"].name,
        "source": extra.get("source"),
        "event": extra.get("event"),
        "uuid": extra.get("uuid"),
        **extra.get("fields", {}),
        "message": entry["message"],
    }
    extra["_json"] = _json.encode(line).decode()
    return "{extra[_json]}\n"


def add_audit_file(
    path: str | os.PathLike[str],
    *,
    rotation: str = "50 MB",
    retention: str = "90 days",
    source: str | None = None,
) -> int:
    """Write every audit event (of ``source`` only, if given) to ``path`` as one JSON object
    per line; returns the loguru handler id (``logger.remove(id)`` stops it)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)

    def wanted(entry: Any) -> bool:
        extra = entry["extra"]
        return extra.get("audit") is True and source in (None, extra.get("source"))

    return logger.add(
        path,
        format=_json_line,
        filter=wanted,
        level="DEBUG",
        rotation=rotation,
        retention=retention,
    )
