"""``Bridge``: the asyncio client a strategy uses to trade through the gateway.

    async with Bridge("tcp://127.0.0.1:5555", secret=secret) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.10, sl=1.0800)
        await bridge.close_position(fill.ticket)

Orders are signed (``RISK_PASS:...``, PROTOCOL.md) and never left in doubt: a request that
times out is sent again with the same uuid (the gateway's idempotency key, so it cannot
execute twice), re-signed, with backoff; then the gateway is asked about it; a ``PENDING``
answer is waited on. Only when none of that answers does ``send_order`` raise
``OutcomeUnknown``, carrying the uuid to ask about later.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuid_module
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self, TypeVar

import msgspec
import zmq.asyncio

from inf_bridge.channel import Channel
from inf_bridge.errors import (
    GatewayTimeout,
    OrderRejected,
    OutcomeUnknown,
    ProtocolError,
)
from inf_bridge.results import OrderFilled, OrderState
from protocol import (
    Account,
    Close,
    ErrorCode,
    GetAccount,
    GetOrder,
    GetPositions,
    Halt,
    Open,
    Ping,
    Position,
    Reply,
    Request,
    Resume,
    Side,
    SignedRequest,
    Status,
    secret_key,
    sign,
)

__all__ = ["Bridge"]

SignedT = TypeVar("SignedT", bound=SignedRequest)

_RETRY_BACKOFF_S: Final = 0.2
_RETRY_BACKOFF_MAX_S: Final = 2.0
_PENDING_POLL_S: Final = 0.25


def new_uuid() -> str:
    """A fresh request id: 32 hex characters."""
    return uuid_module.uuid4().hex


class Bridge:
    """An async client of the gateway at ``endpoint``.

    ``secret`` is the shared signing secret (``None`` only for a gateway started with
    ``--no-signature-validation``). ``request_timeout`` bounds each round trip;
    ``retries`` is how many times an unanswered order is sent again (same uuid) before the
    gateway is asked about it; ``pending_timeout`` is how long a ``PENDING`` order is waited on.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        secret: str | None,
        request_timeout: float = 2.0,
        retries: int = 2,
        pending_timeout: float = 45.0,
        context: zmq.asyncio.Context | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be zero or more")
        self.endpoint = endpoint
        self.request_timeout = request_timeout
        self.retries = retries
        self.pending_timeout = pending_timeout
        self._key = secret_key(secret) if secret is not None else None
        self._clock = clock
        self._channel = Channel(endpoint, context=context)
        self._state = "new"
        # Gateway time minus local time, so that signatures are stamped in the gateway's clock.
        self.clock_offset = 0.0

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
        """Connect. A Bridge is opened once and closed once."""
        if self._state != "new":
            raise RuntimeError(f"this Bridge is already {self._state}; create a new one")
        await self._channel.open()
        self._state = "open"

    async def close(self) -> None:
        if self._state == "closed":
            raise RuntimeError("this Bridge is already closed")
        self._state = "closed"
        await self._channel.close()

    # -- queries -----------------------------------------------------------------------------

    async def ping(self) -> float:
        """Round-trip time to the gateway, in seconds."""
        started = time.perf_counter()
        await self._query(Ping(uuid=new_uuid(), timestamp=self._now()))
        return time.perf_counter() - started

    async def get_account(self) -> Account:
        reply = await self._query(GetAccount(uuid=new_uuid(), timestamp=self._now()))
        if reply.account is None:
            raise ProtocolError("GET_ACCOUNT reply without an account")
        return reply.account

    async def get_positions(self, symbol: str | None = None) -> list[Position]:
        request = GetPositions(uuid=new_uuid(), timestamp=self._now(), symbol=symbol)
        reply = await self._query(request)
        return reply.positions or []

    async def get_order(self, uuid: str) -> OrderState:
        """What the gateway knows of the OPEN or CLOSE sent with ``uuid``.

        Raises ``OrderRejected`` with ``ORDER_NOT_FOUND`` when it knows nothing of it.
        """
        reply = await self._query(GetOrder(uuid=new_uuid(), timestamp=self._now(), order_uuid=uuid))
        return OrderState.from_reply(reply)

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
        uuid: str | None = None,
    ) -> OrderFilled:
        """Open a position with a market order; return the fill.

        Raises ``OrderRejected`` when it was refused (not executed), and ``OutcomeUnknown``
        when it cannot be told whether it executed.
        """
        order = Open(
            uuid=uuid or new_uuid(),
            timestamp=0.0,
            symbol=symbol,
            type=Side(type),
            volume=volume,
            price=price,
            sl=sl,
            tp=tp,
            deviation=deviation,
            magic=magic,
            comment=comment,
        )
        return await self._execute(order)

    async def close_position(
        self,
        ticket: int,
        volume: float | None = None,
        *,
        deviation: int | None = None,
        uuid: str | None = None,
    ) -> OrderFilled:
        """Close position ``ticket``, wholly or (with ``volume``) in part; return the fill."""
        order = Close(
            uuid=uuid or new_uuid(),
            timestamp=0.0,
            ticket=ticket,
            volume=volume,
            deviation=deviation,
        )
        return await self._execute(order)

    async def halt(self, reason: str | None = None) -> bool:
        """Throw the gateway's kill switch: it refuses new OPEN orders, from every client,
        until ``resume()`` (CLOSE still works). Returns whether the gateway is halted."""
        return await self._switch(Halt(uuid=new_uuid(), timestamp=0.0, reason=reason))

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

    def _now(self) -> float:
        return self._clock() + self.clock_offset

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"this Bridge is {self._state}; use `async with Bridge(...)`")

    async def _query(self, request: Request) -> Reply:
        self._require_open()
        reply = await self._channel.request(request, self.request_timeout)
        if reply.status is Status.REJECTED:
            raise _rejection(reply)
        return reply

    def _stamp(self, order: SignedT) -> SignedT:
        """The order as sent now: fresh timestamp and, with a secret, a fresh signature."""
        now = self._now()
        stamped = msgspec.structs.replace(order, timestamp=now)
        if self._key is None:
            return stamped
        return sign(self._key, stamped, ts_ms=int(now * 1000))

    async def _execute(self, order: Open | Close) -> OrderFilled:
        """Send ``order`` until its outcome is known (see the module docstring)."""
        self._require_open()
        reply = await self._settle(order)
        if reply.status is Status.FILLED:
            return OrderFilled.from_reply(order.uuid, order.action, reply)
        raise _rejection(reply)

    async def _settle(self, order: SignedRequest) -> Reply:
        backoff = _RETRY_BACKOFF_S
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RETRY_BACKOFF_MAX_S)
            try:
                reply = await self._channel.request(self._stamp(order), self.request_timeout)
            except GatewayTimeout:
                continue
            if reply.status is not Status.PENDING:
                return reply
            settled = await self._await_pending(order.uuid)
            if settled is not None:
                return settled
            # ORDER_NOT_FOUND after PENDING: reconciliation proved it did not execute, and
            # the uuid is free again: send it once more.
        return await self._ask(order)

    async def _ask(self, order: SignedRequest) -> Reply:
        """Retries ran out: ask the gateway what became of the order."""
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
            settled = await self._await_pending(order.uuid)
            if settled is None:
                raise GatewayTimeout(f"{order.action} {order.uuid} was not executed")
            return settled
        return state

    async def _await_pending(self, uuid: str) -> Reply | None:
        """Poll until the order is settled: its final reply, or ``None`` if the gateway
        reports it was never executed. Raises ``OutcomeUnknown`` at ``pending_timeout``."""
        deadline = time.monotonic() + self.pending_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(_PENDING_POLL_S)
            try:
                state = await self._order_reply(uuid)
            except GatewayTimeout:
                continue
            if state is None or state.status is not Status.PENDING:
                return state
        raise OutcomeUnknown(uuid, f"still pending after {self.pending_timeout:g} s")

    async def _order_reply(self, uuid: str) -> Reply | None:
        """GET_ORDER for ``uuid``: the stored reply, or ``None`` if the gateway has none."""
        request = GetOrder(uuid=new_uuid(), timestamp=self._now(), order_uuid=uuid)
        reply = await self._channel.request(request, self.request_timeout)
        if reply.error_code == ErrorCode.ORDER_NOT_FOUND:
            return None
        return reply


def _rejection(reply: Reply) -> OrderRejected:
    return OrderRejected(
        reply.error_code or ErrorCode.INTERNAL.value,
        reply.error_msg or "rejected",
        uuid=reply.order_uuid or reply.uuid,
        retcode=reply.retcode,
    )
