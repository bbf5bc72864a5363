"""The client's connection: one DEALER socket, requests matched to replies by uuid.

Any number of coroutines may have requests outstanding at once (no lock-step): each waits on
its own future, and one receive task resolves them as replies arrive, in whatever order.

Socket options, and why:
- ``IMMEDIATE``: queue messages only on a live connection. While the gateway is down a
  send waits (and times out) instead of piling orders up to be delivered, stale, later.
- ``LINGER 0``: on close, drop what was not sent; an order must never leave after its
  caller gave up on it.
- ZMTP heartbeats: notice a dead TCP connection (a pulled cable) within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import msgspec
import zmq
import zmq.asyncio
from loguru import logger

from inf_bridge.errors import GatewayTimeout
from protocol import Reply, Request, decode_reply, encode

__all__ = ["Channel"]

_RECONNECT_IVL_MS: Final = 100
_RECONNECT_IVL_MAX_MS: Final = 2000
_ZMTP_HEARTBEAT_MS: Final = 1000


class Channel:
    """A DEALER connection to the gateway at ``endpoint``."""

    def __init__(
        self,
        endpoint: str,
        *,
        context: zmq.asyncio.Context | None = None,
        curve: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._context = context or zmq.asyncio.Context.instance()
        self._curve = curve  # (server public key, client public key, client secret key)
        self._socket: zmq.asyncio.Socket | None = None
        self._waiting: dict[str, asyncio.Future[Reply]] = {}
        self._receiver: asyncio.Task[None] | None = None
        self.unmatched_replies = 0

    async def open(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, _RECONNECT_IVL_MS)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, _RECONNECT_IVL_MAX_MS)
        sock.setsockopt(zmq.HEARTBEAT_IVL, _ZMTP_HEARTBEAT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * _ZMTP_HEARTBEAT_MS)
        if self._curve is not None:
            server_key, public_key, secret_key = self._curve
            sock.curve_serverkey = server_key
            sock.curve_publickey = public_key
            sock.curve_secretkey = secret_key
        sock.connect(self.endpoint)
        self._socket = sock
        self._receiver = asyncio.create_task(self._receive(), name="bridge-receiver")

    async def close(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiver
        if self._socket is not None:
            self._socket.close(linger=0)
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        self._waiting.clear()

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    async def request(self, request: Request, timeout: float) -> Reply:
        """Send ``request`` and return its reply; ``GatewayTimeout`` after ``timeout`` s."""
        sock = self._socket
        if sock is None:
            raise RuntimeError("the channel is not open")
        uuid = request.uuid
        if uuid in self._waiting:
            raise ValueError(f"a request with uuid {uuid} is already waiting for its reply")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[uuid] = future
        try:
            async with asyncio.timeout(timeout):
                await sock.send(encode(request))
                return await future
        except TimeoutError:
            raise GatewayTimeout(
                f"no reply to {request.action} {uuid} within {timeout:g} s"
            ) from None
        finally:
            self._waiting.pop(uuid, None)

    async def _receive(self) -> None:
        assert self._socket is not None
        sock = self._socket
        while True:
            frames = await sock.recv_multipart()
            try:
                reply = decode_reply(frames[-1])
            except msgspec.DecodeError as exc:
                logger.error("unreadable reply from the gateway: {}", exc)
                continue
            if reply.uuid is None:
                # Our requests are always readable, so this is a bug in one of them; no
                # future can be matched to it.
                logger.error("the gateway could not read a request: {}", reply.error_msg)
                continue
            future = self._waiting.get(reply.uuid)
            if future is None or future.done():
                self.unmatched_replies += 1  # a late reply to a request we gave up on
                continue
            future.set_result(reply)
