"""The floor: the least a ZeroMQ server can do per request, measured in the same run.

A bare asyncio ROUTER that decodes each request with the project's codec and answers at once
with a canned reply of the right kind (PING -> OK, OPEN and CLOSE -> FILLED, ...), so that the
very same client code (``inf_bridge.Bridge``) runs against it unchanged. It drains every
queued message after each wake-up, as the gateway's transport does, and runs on the same event
loop (uvloop on POSIX): the gateway is compared with the best its own design can do, not with
a strawman. It has its own few lines of transport on purpose: were it to share the gateway's,
a slow transport would slow the floor too and hide itself.

    python -m bench.floor --bind tcp://127.0.0.1:6000     # serves until SIGTERM or SIGINT

``FloorProcess`` runs it as a child process, stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import subprocess
import sys
import time
import uuid as uuid_module
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self

import zmq

from gtw_server.process import free_port
from gtw_server.runtime import install_stop_handlers, loop_factory
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
    decode_reply,
    decode_request,
    encode,
)

__all__ = ["EchoServer", "FloorProcess", "main"]

_BATCH: Final = 256  # as the gateway's transport: messages per wake-up before yielding
_HWM: Final = 100_000
_READY_POLL_MS: Final = 200
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
    """A bound ROUTER socket that answers every request at once, in place."""

    def __init__(self, endpoint: str, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        sock: zmq.Socket[bytes] = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.SNDHWM, _HWM)
        sock.setsockopt(zmq.RCVHWM, _HWM)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        self._sock = sock
        self._tickets = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._drain)
        self._loop.call_soon(self._drain)  # requests may have queued before the reader

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def _drain(self) -> None:
        sock = self._sock
        for _ in range(_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                # The failed read is the last operation on the socket, which re-arms its
                # edge-triggered descriptor: the next message wakes us up again.
                return
            # The last frame is the body; what precedes it is the envelope, sent back as is
            # (a DEALER's [identity], or a REQ's [identity, b""]).
            try:
                reply = self._reply(decode_request(frames[-1]))
            except DecodeError as exc:
                reply = Reply(
                    uuid=exc.uuid,
                    action=exc.action,
                    status=Status.REJECTED,
                    timestamp=time.time(),
                    error_code=exc.code.value,
                    error_msg=exc.message,
                )
            frames[-1] = encode(reply)
            sock.send_multipart(frames, zmq.NOBLOCK)
        assert self._loop is not None
        self._loop.call_soon(self._drain)  # more may be queued: continue after a loop turn

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


async def _serve(endpoint: str) -> int:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        server = EchoServer(endpoint, context)
    except zmq.ZMQError as exc:
        print(f"floor: cannot bind {endpoint}: {exc}", file=sys.stderr)
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
        return runner.run(_serve(args.bind))


class FloorProcess:
    """The floor as a child process on a free loopback port, stopped by its PID.

    >>> with FloorProcess() as floor:  # doctest: +SKIP
    ...     print(floor.endpoint)
    tcp://127.0.0.1:41234
    """

    def __init__(self, port: int | None = None) -> None:
        self.endpoint = f"tcp://127.0.0.1:{port or free_port()}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the floor is not running")
        return self._process.pid

    def start(self, *, wait: float = 20.0) -> Self:
        """Start the floor and wait (up to ``wait`` s) until it answers PING."""
        command = [sys.executable, "-m", "bench.floor", "--bind", self.endpoint]
        flags = 0
        if sys.platform == "win32":  # so that CTRL_BREAK reaches the floor alone
            flags = subprocess.CREATE_NEW_PROCESS_GROUP
        self._process = subprocess.Popen(command, creationflags=flags)
        try:
            self._wait_ready(wait)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, then SIGKILL if it has not exited within ``timeout``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        if sys.platform == "win32":
            process.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the floor exited with code {self._process.returncode}")
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            try:
                sock.connect(self.endpoint)
                sock.send(encode(Ping(uuid=uuid_module.uuid4().hex, timestamp=time.time())))
                if sock.poll(_READY_POLL_MS) and decode_reply(sock.recv()).status is Status.OK:
                    return
            finally:
                sock.close()
        raise RuntimeError(f"the floor did not answer PING on {self.endpoint} in {timeout} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
