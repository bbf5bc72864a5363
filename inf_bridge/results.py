"""What the client's calls return: small frozen objects with attribute access."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from protocol import Reply, terminal_answer

__all__ = ["OrderDone", "OrderFilled", "OrderState"]


def _answered(reply: Reply) -> dict[str, Any]:
    """What an executed command's reply says besides its tickets and fill: the terminal's
    answer, what the gateway fitted or resolved, and whether it was a duplicate."""
    return {
        "retcode": reply.retcode,
        "comment": reply.comment,
        "volume_requested": reply.volume_requested,
        "symbol": reply.symbol,
        "duplicate": reply.duplicate,
        **terminal_answer(reply),
    }


class OrderFilled(Struct, frozen=True, kw_only=True):
    """An OPEN, CLOSE or CLOSE_BY that executed.

    ``ticket`` is the position's ticket (pass it to ``close_position``); ``volume`` and
    ``price`` are what was filled (``volume_requested``: what was asked, when the gateway
    rounded it down); ``symbol`` is the broker's name when the one given was resolved to it
    (``EURUSD.m`` for ``EURUSD``); ``bid``, ``ask``, ``request_id`` and ``retcode_external``
    are the rest of the terminal's answer; ``duplicate`` is true when the gateway had already
    executed this uuid and returned the stored result.
    """

    uuid: str
    action: str
    ticket: int
    order: int
    deal: int
    volume: float
    price: float
    retcode: int | None = None
    comment: str | None = None
    volume_requested: float | None = None
    symbol: str | None = None
    bid: float | None = None
    ask: float | None = None
    request_id: int | None = None
    retcode_external: int | None = None
    duplicate: bool = False

    @classmethod
    def from_reply(cls, uuid: str, action: str, reply: Reply) -> OrderFilled:
        return cls(
            uuid=uuid,
            action=action,
            ticket=reply.ticket or 0,
            order=reply.order or 0,
            deal=reply.deal or 0,
            volume=reply.volume or 0.0,
            price=reply.price or 0.0,
            **_answered(reply),
        )


class OrderDone(Struct, frozen=True, kw_only=True):
    """A command the terminal carried out with no deal: a pending order placed
    (``place_order``: ``order`` is its ticket, for ``modify_order`` and ``cancel_order``), an
    order changed or cancelled, a position's stops moved (``ticket``: the position).

    ``duplicate`` is true when the gateway had already carried out this uuid and returned
    the stored result.
    """

    uuid: str
    action: str
    ticket: int
    order: int
    retcode: int | None = None
    comment: str | None = None
    volume_requested: float | None = None
    symbol: str | None = None
    bid: float | None = None
    ask: float | None = None
    request_id: int | None = None
    retcode_external: int | None = None
    duplicate: bool = False

    @classmethod
    def from_reply(cls, uuid: str, action: str, reply: Reply) -> OrderDone:
        return cls(
            uuid=uuid,
            action=action,
            ticket=reply.ticket or 0,
            order=reply.order or 0,
            **_answered(reply),
        )


class OrderState(Struct, frozen=True, kw_only=True):
    """What the gateway knows of an earlier command (``get_order``).

    ``status`` is ``FILLED``, ``OK`` (carried out with no deal: placed, modified, cancelled),
    ``REJECTED`` or ``PENDING`` (in flight, or being reconciled).
    """

    uuid: str
    action: str
    status: str
    ticket: int | None = None
    order: int | None = None
    deal: int | None = None
    volume: float | None = None
    price: float | None = None
    retcode: int | None = None
    error_code: str | None = None
    error_msg: str | None = None
    bid: float | None = None
    ask: float | None = None
    request_id: int | None = None
    retcode_external: int | None = None

    @classmethod
    def from_reply(cls, reply: Reply) -> OrderState:
        return cls(
            uuid=reply.order_uuid or "",
            action=reply.order_action or "",
            status=reply.status.value,
            ticket=reply.ticket,
            order=reply.order,
            deal=reply.deal,
            volume=reply.volume,
            price=reply.price,
            retcode=reply.retcode,
            error_code=reply.error_code,
            error_msg=reply.error_msg,
            **terminal_answer(reply),
        )
