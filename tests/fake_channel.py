"""A scripted gateway behind the Bridge's transport seam (``Bridge(..., transport=...)``).

``ScriptedChannel`` answers each request from a script kept per action, in order::

    channel = ScriptedChannel({"OPEN": [TIMEOUT, filled(ticket=7)]})
    async with Bridge("scripted", secret=SECRET, transport=channel, clock=channel.clock) as b:
        await b.send_order("EURUSD", "BUY", 0.1)  # sent, unanswered, sent again: filled

A step is a ``Reply`` (the answer, a millisecond after the send: the uuid, action and, for a
GET_ORDER, the order's uuid are filled in), ``TIMEOUT`` (sent and never answered: the
request's timeout passes, then ``GatewayTimeout``), ``NEVER_SENT`` (no connection: the
timeout passes, then ``GatewayUnreachable``, and ``on_sent`` is never called), or a function
of the request that returns one of those (to look at the Bridge at the moment of the send).
PINGs nobody scripted are answered "alive"; any other request the script has no step for
fails the test. Made for a ``VirtualTimeLoop`` (``support.virtual_time``): the timeouts and
backoffs then pass in no time, and ``exchanges`` records when each request was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

import msgspec

from inf_bridge import GatewayTimeout, GatewayUnreachable
from protocol import ErrorCode, GetOrder, Reply, Request, Status

TIMEOUT: Final = "TIMEOUT"
NEVER_SENT: Final = "NEVER_SENT"
EPOCH: Final = 1_700_000_000.0  # the scripted gateway's wall clock at virtual time 0
ROUND_TRIP_S: Final = 0.001
_NOT_ABOUT_THE_ORDER: Final = frozenset({ErrorCode.ORDER_NOT_FOUND, ErrorCode.BUSY})

Step: TypeAlias = "Reply | str | Callable[[Request], Step]"


def answer(status: Status, **fields: object) -> Reply:
    """A reply with ``status``; the channel fills in what echoes the request."""
    return Reply(uuid=None, action=None, status=status, timestamp=0.0, **fields)


def filled(ticket: int = 1001, volume: float = 0.1, price: float = 1.1, **fields: object) -> Reply:
    """A fill: position ``ticket`` (its order and deal numbered alike)."""
    return answer(
        Status.FILLED,
        ticket=ticket,
        order=ticket,
        deal=ticket,
        volume=volume,
        price=price,
        retcode=10009,
        **fields,
    )


def refused(code: ErrorCode, message: str = "refused") -> Reply:
    return answer(Status.REJECTED, error_code=code.value, error_msg=message)


def pending() -> Reply:
    return answer(Status.PENDING, error_msg="this order is in flight or being reconciled")


def not_found() -> Reply:
    """GET_ORDER's answer about a uuid the gateway has no order for."""
    return refused(ErrorCode.ORDER_NOT_FOUND, "no order with this uuid is known")


ALIVE: Final = answer(Status.OK, mt5_connected=True)


@dataclass(frozen=True)
class Exchange:
    """One request the Bridge made: when (on the loop's clock), what, and what it got."""

    at: float
    request: Request
    step: str  # TIMEOUT, NEVER_SENT, or the answer's status (and error code)

    @property
    def sent(self) -> bool:
        return self.step != NEVER_SENT


class ScriptedChannel:
    """A ``Transport`` that answers from ``script`` (steps per action; see the module)."""

    def __init__(self, script: Mapping[str, Iterable[Step]] | None = None) -> None:
        self._script: dict[str, Iterator[Step]] = {
            action: iter(steps) for action, steps in (script or {}).items()
        }
        self._actions: dict[str, str] = {}  # uuid -> OPEN or CLOSE, for GET_ORDER's answer
        self.exchanges: list[Exchange] = []
        self.is_open = False

    @staticmethod
    def clock() -> float:
        """A wall clock on the loop's time, for the Bridge's ``clock`` (signatures, offsets)."""
        return EPOCH + asyncio.get_running_loop().time()

    async def open(self) -> None:
        self.is_open = True

    async def close(self) -> None:
        self.is_open = False

    async def request(
        self,
        request: Request,
        timeout: float,
        on_sent: Callable[[], None] | None = None,
    ) -> Reply:
        assert self.is_open, f"{request.action} on a channel that is not open"
        step = self._next(request)
        while callable(step):
            step = step(request)
        described = step if isinstance(step, str) else _describe(step)
        self.exchanges.append(Exchange(asyncio.get_running_loop().time(), request, described))
        if step == NEVER_SENT:
            await asyncio.sleep(timeout)
            raise GatewayUnreachable(f"could not send {request.action}; nothing was sent")
        if request.action in ("OPEN", "CLOSE"):
            self._actions[request.uuid] = request.action
        if on_sent is not None:
            on_sent()
        if step == TIMEOUT:
            await asyncio.sleep(timeout)
            raise GatewayTimeout(f"no reply to {request.action} within {timeout:g} s")
        assert isinstance(step, Reply), f"not a step: {step!r}"
        await asyncio.sleep(ROUND_TRIP_S)
        return self._echo(request, step)

    async def request_with_body(self, request: Request, timeout: float) -> tuple[Reply, bytes]:
        """``request``'s answer, and no frame of rows (a scripted reply has none)."""
        return await self.request(request, timeout), b""

    def sent(self, action: str) -> list[Request]:
        """The requests of ``action`` that left, in order."""
        return [e.request for e in self.exchanges if e.sent and e.request.action == action]

    def times(self, action: str) -> list[float]:
        """When each request of ``action`` was made (sent or not), on the loop's clock."""
        return [e.at for e in self.exchanges if e.request.action == action]

    def _next(self, request: Request) -> Step:
        steps = self._script.get(request.action)
        step = next(steps, None) if steps is not None else None
        if step is not None:
            return step
        if request.action == "PING":
            return ALIVE
        raise AssertionError(f"the script has no answer for {request.action} {request.uuid}")

    def _echo(self, request: Request, reply: Reply) -> Reply:
        reply = msgspec.structs.replace(
            reply, uuid=request.uuid, action=request.action, timestamp=self.clock()
        )
        if isinstance(request, GetOrder) and reply.error_code not in _NOT_ABOUT_THE_ORDER:
            # The gateway names the order it answers about (not when it has none, nor when
            # it refuses the question itself).
            order_action = self._actions.get(request.order_uuid, "OPEN")
            reply = msgspec.structs.replace(
                reply, order_uuid=request.order_uuid, order_action=order_action
            )
        return reply


def _describe(reply: Reply) -> str:
    return reply.status.value + (f" {reply.error_code}" if reply.error_code else "")
