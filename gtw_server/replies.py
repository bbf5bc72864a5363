"""Building replies: one place that knows which fields each outcome carries."""

from __future__ import annotations

import time
from typing import Any

from gtw_server.adapter import OrderOutcome
from protocol import ErrorCode, Reply, Request, Status, terminal_answer

__all__ = ["ok", "outcome_reply", "pending", "rejected", "terminal_unanswered"]


def ok(request: Request, **fields: Any) -> Reply:
    """An ``OK`` reply to ``request``, carrying ``fields`` (``account=...``, ``halted=...``)."""
    return Reply(
        uuid=request.uuid,
        action=request.action,
        status=Status.OK,
        timestamp=time.time(),
        **fields,
    )


def rejected(
    uuid: str | None,
    action: str | None,
    code: ErrorCode,
    message: str,
    *,
    retcode: int | None = None,
    comment: str | None = None,
    **answer: Any,
) -> Reply:
    """A ``REJECTED`` reply: nothing was executed, and ``code`` says why; ``answer``: the rest
    of the terminal's, when it refused (``bid``, ``ask``, ...)."""
    return Reply(
        uuid=uuid,
        action=action,
        status=Status.REJECTED,
        timestamp=time.time(),
        error_code=code.value,
        error_msg=message,
        retcode=retcode,
        comment=comment,
        **answer,
    )


def terminal_unanswered(request: Request) -> Reply:
    """The refusal of a query the terminal could not answer (nothing was changed)."""
    return rejected(
        request.uuid,
        request.action,
        ErrorCode.MT5_DISCONNECTED,
        "the terminal could not answer; try again shortly",
    )


def pending(request: Request, message: str) -> Reply:
    """A ``PENDING`` reply: the outcome is not known yet; ask again with the same uuid."""
    return Reply(
        uuid=request.uuid,
        action=request.action,
        status=Status.PENDING,
        timestamp=time.time(),
        error_msg=message,
    )


def outcome_reply(uuid: str, action: str, outcome: OrderOutcome) -> Reply:
    """The reply for a command whose outcome is ``FILLED``, ``DONE`` (an ``OK`` reply) or
    ``REJECTED``."""
    answer = terminal_answer(outcome)
    if outcome.status not in ("FILLED", "DONE"):
        return rejected(
            uuid,
            action,
            outcome.error_code or ErrorCode.MT5_REJECTED,
            outcome.error_msg or "the terminal rejected the order",
            retcode=outcome.retcode,
            comment=outcome.comment,
            **answer,
        )
    return Reply(
        uuid=uuid,
        action=action,
        status=Status.FILLED if outcome.status == "FILLED" else Status.OK,
        timestamp=time.time(),
        retcode=outcome.retcode,
        comment=outcome.comment,
        ticket=outcome.ticket,
        order=outcome.order,
        deal=outcome.deal,
        volume=outcome.volume,
        price=outcome.price,
        volume_requested=outcome.volume_requested,
        symbol=outcome.resolved,
        **answer,
    )
