"""The gateway's own backstop: the kill switch, [gateway.limits], the dead-man's switch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest
import zmq

from gtw_server.process import GatewayProcess
from inf_bridge import Bridge, OrderRejected
from protocol import Halt, Ping, Status, decode_reply, encode, secret_key, sign


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


async def test_dead_mans_switch_halts_after_silence(tmp_path: Path, secret: str) -> None:
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, gateway={"halt_after_silence_s": 1.0})
    with gateway:
        await asyncio.sleep(2.0)  # nobody says anything
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
