"""The gateway's own backstop: the kill switch, [gateway.limits], the dead-man's switch."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from pathlib import Path

import msgspec
import pytest
import zmq
from support import eventually_async, ping, request, signed_open

from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, OrderRejected
from protocol import (
    Halt,
    Open,
    Ping,
    Resume,
    Side,
    Status,
    decode_reply,
    encode,
    secret_key,
    sign,
)


async def refused(call: Awaitable[object]) -> OrderRejected:
    with pytest.raises(OrderRejected) as excinfo:
        await call
    return excinfo.value


def signed_halt(secret: str, uuid: str) -> Halt:
    now = time.time()
    return sign(secret_key(secret), Halt(uuid=uuid, timestamp=now), int(now * 1000))


async def gateway_info_halted(bridge: Bridge) -> bool:
    reply = await bridge._channel.request(Ping(uuid="ping-halt", timestamp=0.0), 2.0)
    assert reply.gateway is not None
    return reply.gateway.halted


async def test_halt_stops_opens_not_closes_and_survives_a_restart(
    tmp_path: Path, secret: str
) -> None:
    data_dir = tmp_path / "gw"
    with GatewayProcess(data_dir, secret=secret) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1)
            assert await bridge.halt("news at 14:30") is True
            error = await refused(bridge.send_order("EURUSD", "BUY", 0.1))
            assert error.error_code == "TRADING_HALTED"
            assert "news at 14:30" in error.message
            assert await gateway_info_halted(bridge)
            closed = await bridge.close_position(fill.ticket)  # reducing risk stays possible
            assert closed.volume == pytest.approx(0.1)

    with GatewayProcess(data_dir, secret=secret) as gateway:  # still halted after a restart
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            error = await refused(bridge.send_order("EURUSD", "BUY", 0.1))
            assert error.error_code == "TRADING_HALTED"
            assert await bridge.resume() is False
            assert not await gateway_info_halted(bridge)
            assert (await bridge.send_order("EURUSD", "BUY", 0.1)).ticket > 0


async def test_halt_must_be_signed_and_cannot_be_replayed(
    gateway: GatewayProcess, secret: str
) -> None:
    async with Bridge(gateway.endpoint, secret=None) as unsigned:
        error = await refused(unsigned.halt())
        assert error.error_code == "SIGNATURE_MISSING"
    async with Bridge(gateway.endpoint, secret=secret) as bridge:
        first = await bridge._channel.request(signed_halt(secret, "halt-2"), 2.0)
        assert first.status is Status.OK and first.halted
        await bridge.resume()
        # A replayed HALT is answered from the journal and does nothing again.
        replay = await bridge._channel.request(signed_halt(secret, "halt-2"), 2.0)
        assert replay.duplicate
        assert not await gateway_info_halted(bridge)


async def test_limits_refuse_opens_beyond_them(tmp_path: Path, secret: str) -> None:
    limits = {"max_order_volume": 1.0, "max_positions": 2, "symbols": ["EURUSD", "GBPUSD"]}
    with GatewayProcess(tmp_path / "gw", secret=secret, gateway={"limits": limits}) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            error = await refused(bridge.send_order("USDJPY", "BUY", 0.1))
            assert error.error_code == "RISK_REJECTED" and "USDJPY" in error.message
            error = await refused(bridge.send_order("EURUSD", "BUY", 1.5))
            assert error.error_code == "RISK_REJECTED" and "volume" in error.message
            first = await bridge.send_order("EURUSD", "BUY", 1.0)
            await bridge.send_order("GBPUSD", "SELL", 0.5)
            error = await refused(bridge.send_order("EURUSD", "BUY", 0.1))
            assert error.error_code == "RISK_REJECTED" and "2 open positions" in error.message
            await bridge.close_position(first.ticket)  # closing is never limited
            assert len(await bridge.get_positions()) == 1


def halted(gateway: GatewayProcess) -> bool:
    """Whether the gateway says, in an unsigned PING's reply, that it is halted."""
    info = request(gateway.endpoint, ping())["gateway"]
    return bool(info.get("halted"))


async def test_dead_mans_switch_halts_after_silence(tmp_path: Path, secret: str) -> None:
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, gateway={"halt_after_silence_s": 1.0})
    with gateway:
        # Nobody says anything (an unsigned PING is no one: it does not keep the switch alive).
        await eventually_async(lambda: halted(gateway), "the dead-man's switch to halt it")
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            error = await refused(bridge.send_order("EURUSD", "BUY", 0.1))
            assert error.error_code == "TRADING_HALTED"
            assert "DEAD_MAN" in error.message
            assert await bridge.resume() is False
            assert (await bridge.send_order("EURUSD", "BUY", 0.1)).ticket > 0


async def test_reply_of_a_raw_halt_round_trips(gateway: GatewayProcess, secret: str) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(gateway.endpoint)
    try:
        sock.send(encode(signed_halt(secret, "raw-halt")))
        assert sock.poll(5000)
        reply = decode_reply(sock.recv())
    finally:
        sock.close()
    assert reply.status is Status.OK and reply.halted is True


def signed_switch(secret: str, request: Halt | Resume) -> bytes:
    now = time.time()
    stamped = msgspec.structs.replace(request, timestamp=now)
    return encode(sign(secret_key(secret), stamped, int(now * 1000)))


async def test_with_an_operator_key_only_it_can_halt_or_resume(tmp_path: Path, secret: str) -> None:
    operator = "operator-" + secrets.token_hex(16)
    key_file = tmp_path / "operator-secret"
    key_file.write_text(operator + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(
        tmp_path / "gw", secret=secret, args=["--operator-secret-file", str(key_file)], log_file=log
    )
    with gateway:
        halt = request(gateway.endpoint, signed_switch(secret, Halt(uuid="h-1", timestamp=0)))
        assert halt["status"] == "REJECTED" and halt["error_code"] == "SIGNATURE_INVALID"
        assert "operator" in str(halt["error_msg"])
        halt = request(
            gateway.endpoint, signed_switch(operator, Halt(uuid="h-2", timestamp=0, reason="ops"))
        )
        assert halt["status"] == "OK" and halt["halted"] is True
        # A stolen node secret cannot lift it...
        resume = request(gateway.endpoint, signed_switch(secret, Resume(uuid="r-1", timestamp=0)))
        assert resume["error_code"] == "SIGNATURE_INVALID"
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            error = await refused(bridge.send_order("EURUSD", "BUY", 0.1))
            assert error.error_code == "TRADING_HALTED"
        # ...and an operator key is no order key.
        refusal = request(gateway.endpoint, signed_open(operator, "op-order"))
        assert refusal["error_code"] == "SIGNATURE_INVALID"
        resume = request(gateway.endpoint, signed_switch(operator, Resume(uuid="r-2", timestamp=0)))
        assert resume["status"] == "OK" and resume["halted"] is False
    assert "no operator secret" not in log.read_text(encoding="utf-8")


def test_without_an_operator_key_the_gateway_says_the_order_secret_lifts_a_halt(
    tmp_path: Path, secret: str
) -> None:
    log = tmp_path / "gateway.log"
    with GatewayProcess(tmp_path / "gw", secret=secret, log_file=log):
        pass
    assert "no operator secret" in log.read_text(encoding="utf-8")


def test_the_operator_key_must_not_be_the_order_secret(tmp_path: Path, secret: str) -> None:
    same = tmp_path / "same"
    same.write_text(secret, encoding="utf-8")
    same.chmod(0o600)
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(
        tmp_path / "gw", secret=secret, args=["--operator-secret-file", str(same)], log_file=log
    )
    with pytest.raises(RuntimeError, match="exited with code 2"):
        gateway.start(wait=20)
    assert "the operator's key must differ" in log.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "reason",
    ["line\nforged [RESUMED]", "\x1b[2Jclear", "tab\there", "\x85", "a\u2028b", "\u202egnp.exe"],
)
def test_a_control_character_in_a_halt_reason_is_refused(
    gateway: GatewayProcess, secret: str, reason: str
) -> None:
    frame = signed_switch(secret, Halt(uuid="h-ctl", timestamp=0, reason=reason))
    reply = request(gateway.endpoint, frame)
    assert reply["status"] == "REJECTED" and reply["error_code"] == "INVALID_REQUEST"
    assert "$.reason" in str(reply["error_msg"]) and "control" in str(reply["error_msg"])
    ping = request(gateway.endpoint, encode(Ping(uuid="after", timestamp=time.time())))
    assert isinstance(ping["gateway"], dict) and "halted" not in ping["gateway"]


async def test_strangers_do_not_keep_the_dead_mans_switch_alive(
    tmp_path: Path, secret: str
) -> None:
    """Garbage, unsigned PINGs, unsigned and wrongly signed orders all through the limit: the
    gateway halts anyway. Signed PINGs alone keep a second gateway trading."""
    limit = {"halt_after_silence_s": 1.5}
    stranger = GatewayProcess(tmp_path / "gw1", secret=secret, gateway=limit)
    friend = GatewayProcess(tmp_path / "gw2", secret=secret, gateway=limit)
    wrong = secret_key("a-secret-the-gateway-does-not-have")
    with stranger, friend:
        context = zmq.Context.instance()
        socks = [context.socket(zmq.DEALER) for _ in range(2)]
        for sock, process in zip(socks, (stranger, friend), strict=True):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(process.endpoint)
        try:
            deadline = time.monotonic() + 4.0  # well past the limit
            n = 0
            while time.monotonic() < deadline:
                n += 1
                now = time.time()
                socks[0].send(b"not json")
                socks[0].send(encode(Ping(uuid=f"p{n}", timestamp=now)))
                forged = Open(
                    uuid=f"o{n}", timestamp=now, symbol="EURUSD", type=Side.BUY, volume=0.1
                )
                socks[0].send(encode(sign(wrong, forged, int(now * 1000))))
                socks[0].send(encode(forged))
                signed_ping = sign(
                    secret_key(secret), Ping(uuid=f"f{n}", timestamp=now), int(now * 1000)
                )
                socks[1].send(encode(signed_ping))
                await asyncio.sleep(0.2)  # traffic all through the limit: the scenario
        finally:
            for sock in socks:
                sock.close()
        for process, halted in ((stranger, True), (friend, False)):
            info = request(process.endpoint, encode(Ping(uuid="look", timestamp=time.time())))
            assert isinstance(info["gateway"], dict)
            assert bool(info["gateway"].get("halted")) is halted, process.endpoint
            if halted:
                assert "DEAD_MAN" in str(info["gateway"]["halt_reason"])
