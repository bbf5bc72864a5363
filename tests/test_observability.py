"""What an operator sees: Prometheus metrics, and one order's life across both audit files."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from support import eventually_async, scrape

from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, OrderRejected, add_audit_file, serve_metrics


async def test_metrics_count_requests_and_terminal_calls(tmp_path: Path, secret: str) -> None:
    port = free_port()
    gateway = GatewayProcess(tmp_path / "gw", secret=secret, gateway={"metrics_port": port})
    with gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1)
            await bridge.close_position(fill.ticket)
            with pytest.raises(OrderRejected):
                await bridge.send_order("EURUSD", "BUY", 0.001)
            # The reply goes out before its task has journaled the verdict: the gauge of
            # requests in flight falls to 0 just after the last reply, not before it.
            samples = await eventually_async(
                lambda: _settled(port), "the last request's task to end", timeout=10
            )
    assert samples['mt5_gateway_requests_total{action="OPEN",status="FILLED"}'] == 1
    assert samples['mt5_gateway_requests_total{action="CLOSE",status="FILLED"}'] == 1
    assert samples['mt5_gateway_requests_total{action="OPEN",status="REJECTED"}'] == 1
    assert samples['mt5_gateway_requests_total{action="PING",status="OK"}'] >= 1
    assert samples['mt5_gateway_request_seconds_count{action="OPEN"}'] == 2
    assert samples['mt5_gateway_terminal_call_seconds_count{op="open"}'] == 2
    assert samples["mt5_gateway_mt5_connected"] == 1
    assert samples["mt5_gateway_halted"] == 0
    assert samples["mt5_gateway_journal_entries"] == 3
    assert samples["mt5_gateway_in_flight"] == 0


async def _settled(port: int) -> dict[str, float] | None:
    samples = await asyncio.to_thread(scrape, port)
    return samples if samples["mt5_gateway_in_flight"] == 0 else None


async def test_one_orders_life_across_both_audit_files(tmp_path: Path, secret: str) -> None:
    node_file = tmp_path / "node-audit.jsonl"
    trail = add_audit_file(node_file, source="node")
    gateway_file = tmp_path / "gw" / "audit.jsonl"

    def records(path: Path) -> list[dict[str, str]]:
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in lines if e["uuid"] == "followed-1"]

    def life(path: Path) -> list[str]:
        return [f"{e['source']}:{e['event']}" for e in records(path)]

    try:
        with GatewayProcess(tmp_path / "gw", secret=secret) as gateway:
            async with Bridge(gateway.endpoint, secret=secret) as bridge:
                sent = dt.datetime.now(dt.UTC)
                await bridge.send_order("EURUSD", "SELL", 0.1, uuid="followed-1")
                # Written after the reply (with no other order, within milliseconds), each
                # line with the time its event happened.
                await eventually_async(
                    lambda: len(life(gateway_file)) == 2, "the gateway's lines", timeout=5
                )
    finally:
        trail.close()

    assert life(node_file) == ["node:RISK_PASS", "node:ZMQ_SENT", "node:MT5_FILLED"]
    assert life(gateway_file) == ["gateway:ORDER_RECEIVED", "gateway:MT5_FILLED"]
    received, filled = (dt.datetime.fromisoformat(e["time"]) for e in records(gateway_file))
    assert sent <= received <= filled  # (the fill's is when the reply had gone)


async def test_the_node_exports_its_breaker_and_heartbeat(
    gateway: GatewayProcess, secret: str
) -> None:
    port = free_port()
    async with Bridge(gateway.endpoint, secret=secret) as bridge:
        serve_metrics(bridge, port)
        samples = await asyncio.to_thread(scrape, port)
        assert samples["mt5_bridge_breaker_open"] == 0
        assert samples["mt5_bridge_health"] == 0
        assert 0 < samples["mt5_bridge_heartbeat_rtt_seconds"] < 2
        bridge.breaker.trip("MANUAL")
        assert (await asyncio.to_thread(scrape, port))["mt5_bridge_breaker_open"] == 1


def test_audit_files_rotate_by_size_and_forget_by_age(tmp_path: Path) -> None:
    from inf_bridge.audit import record

    path = tmp_path / "audit.jsonl"
    trail = add_audit_file(path, rotation="1 KB", retention="1 day", source="node")
    try:
        for n in range(30):  # about 150 bytes a line: a few rotations
            record("TEST", f"line {n}", uuid=f"u{n}")
        rotated = sorted(tmp_path.glob("audit.*.jsonl"))
        assert len(rotated) >= 3 and path.stat().st_size < 1024
        lines = [json.loads(line) for f in [*rotated, path] for line in f.read_text().splitlines()]
        assert [line["uuid"] for line in lines] == [f"u{n}" for n in range(30)]  # none lost
        old = rotated[0]
        os.utime(old, (time.time() - 2 * 86_400,) * 2)
        for n in range(10):
            record("TEST", f"more {n}")
        assert not old.exists() and rotated[1].exists()  # only what is older than a day went
    finally:
        trail.close()
    with pytest.raises(ValueError, match="rotation"):
        add_audit_file(path, rotation="fifty")
