"""The node's side of the signed PING and of the operator's key, against a stand-in gateway: a
ROUTER socket that checks signatures with ``protocol.verify``, as the contract says
(PROTOCOL.md, "PING reply", "HALT and RESUME"). The real gateway's side is tested end to end
in test_e2e_client.py and test_cli.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from support import eventually_async

from inf_bridge import Bridge, CircuitOpen, OrderRejected
from inf_bridge.cli import Exit, main
from protocol import (
    AnyRequest,
    Halt,
    Ping,
    Reply,
    Resume,
    SignatureError,
    Status,
    decode_request,
    encode_reply,
    secret_key,
    verify,
)

SECRET = "the-gateways-secret-0123456789"
OPERATOR = "the-operators-secret-0123456789"


class StandIn:
    """A gateway that answers PING (checking a signature, when there is one, in its own clock,
    ``skew`` seconds from ours), HALT and RESUME (with the operator's key), and nothing else.
    ``lie`` puts the clock it checks signatures with that far from the one it reports."""

    def __init__(self, skew: float = 0.0, lie: float = 0.0) -> None:
        self.skew = skew
        self.lie = lie
        self.received: list[AnyRequest] = []
        self._sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self.port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"

    def now(self) -> float:
        return time.time() + self.skew

    async def serve(self) -> None:
        while True:
            identity, body = await self._sock.recv_multipart()
            request = decode_request(body)
            self.received.append(request)
            await self._sock.send_multipart([identity, encode_reply(self._answer(request))])

    def _answer(self, request: AnyRequest) -> Reply:
        reply = Reply(uuid=request.uuid, action=request.action, status=Status.OK, timestamp=0.0)
        if isinstance(request, Ping) and request.risk_signature is not None:
            reply = self._checked(reply, secret_key(SECRET), request)
        elif isinstance(request, Halt | Resume):
            reply = self._checked(reply, secret_key(OPERATOR), request)
            if reply.auth_error is None:
                reply = Reply(**{**_fields(reply), "halted": isinstance(request, Halt)})
            else:
                reply = Reply(
                    **{**_fields(reply), "status": Status.REJECTED, "error_code": reply.auth_error}
                )
        return Reply(**{**_fields(reply), "timestamp": self.now(), "mt5_connected": True})

    def _checked(self, reply: Reply, key: bytes, request: Ping | Halt | Resume) -> Reply:
        try:
            verify(key, request, now_ms=int((self.now() + self.lie) * 1000))
        except SignatureError as exc:
            fields = {"authenticated": False, "auth_error": exc.code.value, "error_msg": str(exc)}
            return Reply(**{**_fields(reply), **fields})
        return Reply(**{**_fields(reply), "authenticated": True})

    def close(self) -> None:
        self._sock.close()


def _fields(reply: Reply) -> dict[str, Any]:
    return {name: getattr(reply, name) for name in reply.__struct_fields__}


@contextlib.asynccontextmanager
async def standing_in(skew: float = 0.0, lie: float = 0.0) -> AsyncIterator[StandIn]:
    gateway = StandIn(skew, lie)
    task = asyncio.create_task(gateway.serve())
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gateway.close()


def pings(gateway: StandIn) -> list[Ping]:
    return [r for r in gateway.received if isinstance(r, Ping)]


async def test_heartbeats_are_signed_in_the_gateways_clock() -> None:
    async with (
        standing_in(skew=30.0) as gateway,  # the gateway's clock is 30 s ahead of ours
        Bridge(gateway.endpoint, secret=SECRET, heartbeat_interval=0.05) as bridge,
    ):
        # The first beat cannot know the offset: signed in our clock, it has expired there.
        assert bridge.health.auth_error == "SIGNATURE_EXPIRED"
        assert not bridge.breaker.is_open  # the clocks, not the secret
        await eventually_async(lambda: bridge.health.authenticated, "a beat in its clock", 5)
        assert bridge.health.authenticated is True and bridge.health.auth_error is None
        assert bridge.health.state == "HEALTHY" and not bridge.breaker.is_open
    assert all(ping.risk_signature for ping in pings(gateway))


async def test_a_refused_secret_stops_orders_before_they_are_sent() -> None:
    async with (
        standing_in() as gateway,
        Bridge(gateway.endpoint, secret="not-the-gateways-secret-0123456789") as bridge,
    ):
        assert bridge.breaker.reason == "SECRET_REFUSED"  # from the beat taken on opening
        assert bridge.health.auth_error == "SIGNATURE_INVALID"
        with pytest.raises(CircuitOpen) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 0.1)
        assert excinfo.value.reason == "SECRET_REFUSED"
    assert [r.action for r in gateway.received] == ["PING"]  # no order reached it


async def test_ping_measures_the_round_trip_unsigned() -> None:
    async with (
        standing_in() as gateway,
        Bridge(gateway.endpoint, secret=SECRET, heartbeat_interval=60) as bridge,
    ):
        beats = len(pings(gateway))  # the signed beat taken on opening
        assert await bridge.ping() > 0
    assert [ping.risk_signature is None for ping in pings(gateway)] == [False] * beats + [True]


async def test_without_a_secret_pings_are_not_signed() -> None:
    async with standing_in() as gateway, Bridge(gateway.endpoint, secret=None) as bridge:
        assert bridge.health.authenticated is None and not bridge.breaker.is_open
    assert [ping.risk_signature for ping in pings(gateway)] == [None]


async def test_halt_and_resume_are_signed_with_the_operators_key() -> None:
    async with standing_in() as gateway:
        async with Bridge(gateway.endpoint, secret=SECRET, operator_secret=OPERATOR) as bridge:
            assert await bridge.halt("by the operator") is True
            assert await bridge.resume() is False
            assert bridge.health.authenticated  # PINGs keep the order secret
        async with Bridge(gateway.endpoint, secret=SECRET) as plain:
            with pytest.raises(OrderRejected, match="SIGNATURE_INVALID"):
                await plain.halt()  # without it, the order secret signs HALT


@pytest.fixture
def only_this_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MT5_BRIDGE_* variable and no config file of the machine running the tests."""
    for name in [name for name in os.environ if name.startswith("MT5_BRIDGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))


@pytest.mark.usefixtures("only_this_environment")
@pytest.mark.parametrize(
    ("secret", "lie", "said"),
    [
        ("not-the-gateways-secret-0123456789", 0.0, "the gateway refused this node's secret"),
        (SECRET, 10.0, "the clocks of this node and the gateway differ"),
        (SECRET, 0.0, None),
    ],
)
async def test_cli_ping_says_whether_the_secret_is_accepted(
    secret: str,
    lie: float,
    said: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MT5_BRIDGE_SECRET", secret)
    async with standing_in(skew=30.0, lie=lie) as gateway:  # the CLI copes with the offset
        code = await asyncio.to_thread(main, ["--endpoint", gateway.endpoint, "ping"])
    out, err = capsys.readouterr()
    assert secret not in out + err
    if said is None:
        assert code == Exit.OK and "secret accepted" in out
    else:
        assert code == Exit.REFUSED and said in err and len(err.splitlines()) == 1
