"""The floor: the least a ZeroMQ server can do per request, measured in the same run.

A bare asyncio ROUTER that decodes each request with the project's codec and answers at once
with a canned reply of the right kind (PING -> OK, OPEN and CLOSE -> FILLED, ...), so that the
very same client code (``inf_bridge.Bridge``) runs against it unchanged. It drives its socket
through the gateway's own transport (``RouterTransport``, which drains every queued message
after each wake-up) on the same event loop (uvloop on POSIX): the gateway with its work taken
away, the best its own design can do, not a strawman. ``EchoServer`` is also what the unsafe
design (``bench.unsafe``) and the market floor build on.

    python -m bench.floor --bind tcp://127.0.0.1:6000     # serves until SIGTERM or SIGINT

``FloorProcess`` runs it as a child process, stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import zmq

from gtw_server.runtime import install_stop_handlers
from gtw_server.testing import ServerProcess
from gtw_server.transport import RouterTransport, split_envelope
from plumbing.loop import loop_factory
from protocol import (
    Account,
    AnyRequest,
    Close,
    DecodeError,
    ErrorCode,
    GetAccount,
    GetPositions,
    Halt,
    Open,
    Ping,
    Reply,
    Resume,
    Status,
    decode_request,
    encode,
)

__all__ = ["EchoServer", "FloorProcess", "Serving", "main", "serve"]

_MAX_MESSAGE_BYTES: Final = 1024 * 1024  # the gateway's default
_FILLED_RETCODE: Final = 10009  # TRADE_RETCODE_DONE
_PRICE: Final = 1.1
_ACCOUNT: Final = Account(
    login=1,
    server="Floor",
    currency="USD",
    leverage=100,
    balance=10_000.0,
    equity=10_000.0,
    margin=0.0,
    margin_free=10_000.0,
    margin_level=0.0,
    profit=0.0,
    trade_mode="DEMO",
    trade_allowed=True,
)


class EchoServer:
    """The gateway's own transport (``RouterTransport``) answering every request at once, in
    place: what is left of the gateway when its work is taken away."""

    def __init__(self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        self._transport = RouterTransport(
            endpoint, max_message_bytes=_MAX_MESSAGE_BYTES, context=context
        )
        self._tickets = itertools.count(1)

    def start(self) -> None:
        self._transport.start(self._on_message)

    def close(self) -> None:
        self._transport.close()

    def _on_message(self, frames: list[bytes]) -> None:
        envelope, body = split_envelope(frames)
        try:
            reply = self._reply(decode_request(body[-1]))
        except DecodeError as exc:
            reply = Reply(
                uuid=exc.uuid,
                action=exc.action,
                status=Status.REJECTED,
                timestamp=time.time(),
                error_code=exc.code.value,
                error_msg=exc.message,
            )
        self._transport.send([*envelope, encode(reply)])

    def _reply(self, request: AnyRequest) -> Reply:
        uuid, action, now = request.uuid, request.action, time.time()
        if isinstance(request, Ping):
            return Reply(
                uuid=uuid, action=action, status=Status.OK, timestamp=now, mt5_connected=True
            )
        if isinstance(request, Open | Close):
            ticket = next(self._tickets) if isinstance(request, Open) else request.ticket
            return Reply(
                uuid=uuid,
                action=action,
                status=Status.FILLED,
                timestamp=now,
                retcode=_FILLED_RETCODE,
                ticket=ticket,
                order=ticket,
                deal=ticket,
                volume=request.volume or 0.0,
                price=_PRICE,
            )
        if isinstance(request, GetAccount):
            return Reply(
                uuid=uuid, action=action, status=Status.OK, timestamp=now, account=_ACCOUNT
            )
        if isinstance(request, GetPositions):
            return Reply(uuid=uuid, action=action, status=Status.OK, timestamp=now, positions=[])
        if isinstance(request, Halt | Resume):
            halted = isinstance(request, Halt)
            return Reply(uuid=uuid, action=action, status=Status.OK, timestamp=now, halted=halted)
        # GET_ORDER: a server that keeps nothing knows no order.
        return Reply(
            uuid=uuid,
            action=action,
            status=Status.REJECTED,
            timestamp=now,
            error_code=ErrorCode.ORDER_NOT_FOUND.value,
            error_msg="the floor keeps no orders",
        )


class Serving(Protocol):
    """A server bound at construction: started, then closed."""

    def start(self) -> None: ...

    def close(self) -> None: ...


async def serve(
    name: str, endpoint: str, make: Callable[[zmq.Context[zmq.Socket[bytes]]], Serving]
) -> int:
    """Binds ``make(context)`` to ``endpoint`` and serves until SIGTERM or SIGINT; 2 when it
    cannot bind."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        server = make(context)
    except zmq.ZMQError as exc:
        print(f"{name}: cannot bind {endpoint}: {exc}", file=sys.stderr)
        context.term()
        return 2
    stop = asyncio.Event()
    remove_handlers = install_stop_handlers(asyncio.get_running_loop(), lambda _: stop.set())
    server.start()
    try:
        await stop.wait()
    finally:
        remove_handlers()
        server.close()
        context.term()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor", description="The benchmark's bare echo server."
    )
    parser.add_argument("--bind", required=True, help="ZeroMQ endpoint, e.g. tcp://127.0.0.1:6000")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(serve("floor", args.bind, lambda context: EchoServer(args.bind, context)))


class FloorProcess(ServerProcess):
    """The floor as a child process on a free loopback port, stopped by its PID.

    >>> with FloorProcess() as floor:  # doctest: +SKIP
    ...     print(floor.endpoint)
    tcp://127.0.0.1:41234
    """

    name = "floor"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor", "--bind", self.endpoint]


if __name__ == "__main__":
    sys.exit(main())
