"""The client's Channel tells "never sent" from "sent, and no reply": an order that could not
leave this process is not an order whose outcome is unknown."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import zmq

from gtw_server.testing import free_port
from inf_bridge import GatewayTimeout, GatewayUnreachable, NotExecuted
from inf_bridge.channel import Channel
from protocol import Ping


@pytest.fixture
def silent_router() -> Iterator[str]:
    """A ROUTER that accepts connections and never answers."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = free_port()
    sock.bind(f"tcp://127.0.0.1:{port}")
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        sock.close()


async def test_nothing_listening_is_unreachable_within_the_timeout() -> None:
    channel = Channel(f"tcp://127.0.0.1:{free_port()}")
    await channel.open()
    sent: list[bool] = []
    started = time.monotonic()
    try:
        with pytest.raises(GatewayUnreachable, match="nothing was sent") as excinfo:
            await channel.request(Ping(uuid="p-1", timestamp=0.0), 0.3, lambda: sent.append(True))
    finally:
        await channel.close()
    assert time.monotonic() - started < 2.0  # its own timeout, not a retry loop's
    assert sent == []  # never in the socket: the audit trail's ZMQ_SENT is never written
    assert isinstance(excinfo.value, GatewayTimeout | NotExecuted)  # existing handlers catch it


async def test_sent_and_unanswered_is_a_timeout_not_unreachable(silent_router: str) -> None:
    channel = Channel(silent_router)
    await channel.open()
    sent: list[bool] = []
    try:
        with pytest.raises(GatewayTimeout) as excinfo:
            await channel.request(Ping(uuid="p-2", timestamp=0.0), 1.0, lambda: sent.append(True))
    finally:
        await channel.close()
    assert not isinstance(excinfo.value, GatewayUnreachable)
    assert sent == [True]
