"""The strategy-side client against a real gateway: risk, breaker, heartbeat, audit, retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any, Final, cast

import pytest
import zmq
from loguru import logger
from support import events, eventually_async, sends, terminal_away

from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import (
    BreakerChange,
    Bridge,
    CircuitOpen,
    GatewayTimeout,
    GatewayUnreachable,
    InvalidOrder,
    NotExecuted,
    OrderRejected,
    Position,
    RiskLimits,
    RiskRejected,
)


async def test_limits_refuse_before_anything_is_sent(
    gateway: GatewayProcess, secret: str, audit_file: Path
) -> None:
    limits = RiskLimits(max_order_volume=0.5, symbols=["EURUSD"])
    async with Bridge(gateway.endpoint, secret=secret, risk=limits) as bridge:
        with pytest.raises(RiskRejected) as excinfo:
            await bridge.send_order("EURUSD", "BUY", 1.0, uuid="too-big-1")
        assert excinfo.value.reason == "MAX_ORDER_VOLUME"
        with pytest.raises(RiskRejected) as excinfo:
            await bridge.send_order("USDJPY", "BUY", 0.1, uuid="not-allowed-1")
        assert excinfo.value.reason == "SYMBOL_NOT_ALLOWED"
        for uuid in ("too-big-1", "not-allowed-1"):  # the gateway never heard of them
            with pytest.raises(OrderRejected) as rejected:
                await bridge.get_order(uuid)
            assert rejected.value.error_code == "ORDER_NOT_FOUND"
            assert events(audit_file, uuid) == ["RISK_REJECTED"]
        assert await bridge.get_positions() == []


NAN, INF = float("nan"), float("inf")
BAD_OPENS: Final = {
    "volume": [0, -0.1, NAN, INF, "0.1"],
    "price": [0.0, -1.0, NAN, INF],
    "sl": [-1.0, NAN, INF],
    "tp": [-1.0, NAN, INF],
}
BAD_CLOSES: Final = {"ticket": [0, -5, "7"], "volume": [0, -0.1, NAN, INF]}


async def test_bad_values_are_refused_before_the_risk_check_and_the_audit(
    gateway: GatewayProcess, secret: str, audit_file: Path
) -> None:
    limits = RiskLimits(max_orders_per_minute=1)  # a refused value must not use the one up
    refused: list[tuple[str, InvalidOrder]] = []
    async with Bridge(gateway.endpoint, secret=secret, risk=limits) as bridge:
        for field, values in BAD_OPENS.items():
            for value in values:
                order: dict[str, Any] = {"volume": 0.1, field: value}
                uuid = f"bad-open-{len(refused)}"
                with pytest.raises(InvalidOrder) as excinfo:
                    await bridge.send_order("EURUSD", "BUY", uuid=uuid, **order)
                refused.append((field, excinfo.value))
                assert events(audit_file, uuid) == []  # no RISK_PASS, nothing sent
        for field, values in BAD_CLOSES.items():
            for value in values:
                close: dict[str, Any] = {"ticket": 1, field: value}
                with pytest.raises(InvalidOrder) as excinfo:
                    await bridge.close_position(uuid=f"bad-close-{len(refused)}", **close)
                refused.append((field, excinfo.value))
        fill = await bridge.send_order("EURUSD", "BUY", 0.1)  # the limit was not touched
        assert [p.ticket for p in await bridge.get_positions()] == [fill.ticket]
    for field, error in refused:
        assert error.field == field and str(error).startswith(f"{field}: ")
        assert isinstance(error, ValueError) and isinstance(error, NotExecuted)
    assert "Expected `float` > 0.0" in str(refused[0][1])  # says what is wrong, too
    assert "bad-" not in audit_file.read_text()
    assert "bad-" not in (gateway.data_dir / "audit.jsonl").read_text()


async def test_every_order_leaves_its_life_in_the_audit_log(
    gateway: GatewayProcess, secret: str, audit_file: Path
) -> None:
    async with Bridge(gateway.endpoint, secret=secret) as bridge:
        fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="audited-1")
        await bridge.close_position(fill.ticket, uuid="audited-2")
        with pytest.raises(OrderRejected):
            # 100 lots of gold, 235,000 USD of margin: the terminal's 10019 No money
            await bridge.send_order("XAUUSD", "BUY", 100.0, uuid="audited-3")
        with pytest.raises(OrderRejected):
            await bridge.close_position(fill.ticket, uuid="audited-4")  # closed already
        await bridge.halt("audit test")
        with pytest.raises(OrderRejected):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="audited-5")  # the gateway's
        await bridge.resume()
    assert events(audit_file, "audited-1") == ["RISK_PASS", "ZMQ_SENT", "MT5_FILLED"]
    assert events(audit_file, "audited-2") == ["RISK_PASS", "ZMQ_SENT", "MT5_FILLED"]
    # MT5_REJECTED is the terminal's verdict; a refusal the terminal never saw is REJECTED,
    # the same word as in the gateway's trail.
    assert events(audit_file, "audited-3") == ["RISK_PASS", "ZMQ_SENT", "MT5_REJECTED"]
    assert events(audit_file, "audited-4") == ["RISK_PASS", "ZMQ_SENT", "MT5_REJECTED"]
    assert events(audit_file, "audited-5") == ["RISK_PASS", "ZMQ_SENT", "REJECTED"]
    codes = {
        line["uuid"]: line["error_code"]
        for line in map(json.loads, audit_file.read_text().splitlines())
        if line["event"].endswith("REJECTED")
    }
    assert codes == {
        "audited-3": "MT5_REJECTED",
        "audited-4": "POSITION_NOT_FOUND",
        "audited-5": "TRADING_HALTED",
    }
    (filled,) = [
        json.loads(line)
        for line in audit_file.read_text().splitlines()
        if '"MT5_FILLED"' in line and "audited-1" in line
    ]
    assert filled["ticket"] == fill.ticket and filled["volume"] == 0.1
    text = audit_file.read_text() + (gateway.log_file.read_text() if gateway.log_file else "")
    assert secret not in text
    assert "RISK_PASS:" not in text  # nor any signature


class Tap:
    """The Channel's socket, noting what the audit file holds of each order as it is sent."""

    def __init__(self, sock: zmq.Socket[bytes], audit_file: Path) -> None:
        self._sock = sock
        self._audit_file = audit_file
        self.at_send: dict[str, list[str]] = {}

    def send(self, frame: bytes, flags: int = 0) -> None:
        request = json.loads(frame)
        if request["action"] in ("OPEN", "CLOSE"):
            self.at_send[request["uuid"]] = events(self._audit_file, request["uuid"])
        self._sock.send(frame, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


async def test_risk_pass_is_recorded_before_the_send_and_zmq_sent_after_it(
    bridge: Bridge, audit_file: Path
) -> None:
    channel = bridge._channel
    assert channel._socket is not None
    tap = Tap(channel._socket, audit_file)
    channel._socket = cast("zmq.Socket[bytes]", tap)
    fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="causal-1")
    await bridge.close_position(fill.ticket, uuid="causal-2")
    assert tap.at_send == {"causal-1": ["RISK_PASS"], "causal-2": ["RISK_PASS"]}
    for uuid in ("causal-1", "causal-2"):
        assert events(audit_file, uuid) == ["RISK_PASS", "ZMQ_SENT", "MT5_FILLED"]


async def test_a_dead_gateway_opens_the_breaker_and_a_live_one_closes_it(
    tmp_path: Path, secret: str, audit_file: Path
) -> None:
    gateway = GatewayProcess(tmp_path / "gw", secret=secret).start()
    bridge = Bridge(
        gateway.endpoint,
        secret=secret,
        heartbeat_interval=0.2,
        heartbeat_timeout=0.2,
        heartbeat_failures=3,
        heartbeat_recovery=2,
    )
    async with bridge:
        assert bridge.health.state == "HEALTHY"
        gateway.kill()
        await eventually_async(lambda: bridge.breaker.is_open, "the breaker to open", 10)
        assert bridge.breaker.reason == "HEARTBEAT_FAILURE"
        assert bridge.health.state == "FAILED"
        assert bridge.health.consecutive_failures == 3  # opened at the third miss exactly

        # Refused at once: the coroutine raises on its very first step, before any await,
        # so nothing reaches the network.
        order = bridge.send_order("EURUSD", "BUY", 0.1, uuid="while-open-1")
        with pytest.raises(CircuitOpen) as excinfo:
            order.send(None)
        assert excinfo.value.reason == "HEARTBEAT_FAILURE"
        assert events(audit_file, "while-open-1") == ["RISK_REJECTED"]

        restarted = GatewayProcess(tmp_path / "gw", secret=secret, port=gateway.port).start()
        try:
            await eventually_async(lambda: not bridge.breaker.is_open, "the breaker to close", 15)
            assert bridge.health.state == "HEALTHY"
            assert (await bridge.send_order("EURUSD", "BUY", 0.1)).ticket > 0
        finally:
            restarted.stop()
    log = audit_file.read_text()
    assert "HEARTBEAT_FAIL" in log and "CIRCUIT_OPEN" in log and "CIRCUIT_CLOSED" in log


async def test_daily_loss_trips_the_breaker_until_reset(
    gateway: GatewayProcess, secret: str
) -> None:
    limits = RiskLimits(max_daily_loss=1.0)  # a dollar: the spread alone breaches it
    async with Bridge(
        gateway.endpoint, secret=secret, risk=limits, heartbeat_interval=0.1
    ) as bridge:
        await bridge.send_order("EURUSD", "BUY", 1.0)
        await eventually_async(lambda: bridge.breaker.is_open, "the daily loss to trip it", 10)
        assert bridge.breaker.reason == "DAILY_LOSS"
        with pytest.raises(CircuitOpen):
            await bridge.send_order("EURUSD", "BUY", 0.1)
        # Healthy beats do not close a risk trip: enough of them to close a heartbeat trip
        # come and go, and it never closes meanwhile (not even for a moment).
        changes: list[BreakerChange] = []
        stop_watching = bridge.breaker.add_listener(changes.append)
        health, beats = bridge.health, bridge.health.beats
        await eventually_async(
            lambda: (
                health.beats >= beats + health.recovery_beats
                and health.consecutive_successes >= health.recovery_beats
            ),
            "healthy beats after the trip",
        )
        stop_watching()
        assert changes == [] and bridge.breaker.reason == "DAILY_LOSS"
        positions = await bridge.get_positions()
        assert (await bridge.close_position(positions[0].ticket)).volume == 1.0  # closes work
        bridge.breaker.reset()
        assert not bridge.breaker.is_open


async def test_a_restarted_node_keeps_the_days_loss_from_its_daily_loss_file(
    gateway: GatewayProcess, secret: str, tmp_path: Path
) -> None:
    day_file = str(tmp_path / "day-start.json")
    limits = RiskLimits(max_daily_loss=1.0, daily_loss_file=day_file)
    async with Bridge(
        gateway.endpoint, secret=secret, risk=limits, heartbeat_interval=0.1
    ) as bridge:
        await eventually_async(
            lambda: bridge.risk is not None and bridge.risk.day is not None, "the day's start", 10
        )
        fill = await bridge.send_order("EURUSD", "BUY", 1.0)
        await bridge.close_position(fill.ticket)  # the spread is lost: over a dollar
        await eventually_async(lambda: bridge.breaker.is_open, "the daily loss to trip it", 10)
    # The strategy restarts with a fresh monitor: it counts from the stored morning equity,
    # so the breaker opens before any order; one held in memory would have started afresh.
    limits = RiskLimits(max_daily_loss=1.0, daily_loss_file=day_file)
    async with Bridge(
        gateway.endpoint, secret=secret, risk=limits, heartbeat_interval=0.1
    ) as restarted:
        await eventually_async(lambda: restarted.breaker.is_open, "the stored loss to trip it", 10)
        assert restarted.breaker.reason == "DAILY_LOSS"
        with pytest.raises(CircuitOpen):
            await restarted.send_order("EURUSD", "BUY", 0.01)


async def test_a_symbol_outside_the_market_watch_is_selected_and_traded(bridge: Bridge) -> None:
    # GER40 starts unselected: the terminal gives it no info or tick until the gateway's
    # adapter selects it, as a real terminal does (-4 before symbol_select).
    fill = await bridge.send_order("GER40", "BUY", 0.1)
    assert fill.volume == 0.1 and fill.price > 0
    closed = await bridge.close_position(fill.ticket)
    assert closed.volume == 0.1


async def test_hundred_concurrent_orders_from_one_bridge(bridge: Bridge) -> None:
    fills = await asyncio.gather(*(bridge.send_order("GBPUSD", "SELL", 0.01) for _ in range(100)))
    assert len({f.ticket for f in fills}) == 100
    assert not any(f.duplicate for f in fills)
    assert len(await bridge.get_positions("GBPUSD")) == 100


async def test_signatures_use_the_gateways_clock(bridge: Bridge) -> None:
    # Same machine, same clock: the estimate is tiny, and orders sign fine with it.
    assert abs(bridge.clock_offset) < 0.5
    assert bridge.health.beats >= 1 and bridge.health.last_rtt is not None


async def test_a_reply_lost_on_the_way_back_ends_filled_once(
    tmp_path: Path, secret: str, audit_file: Path
) -> None:
    # Each order takes 1.2 s in the terminal; the client gives up on a reply after 0.4 s.
    sim = {"order_latency_ms": 1200, "order_latency_holds_gil": False}
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=sim) as gateway:
        async with Bridge(
            gateway.endpoint, secret=secret, request_timeout=0.4, retries=2
        ) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.2, uuid="slow-1")
            assert fill.ticket > 0 and fill.volume == 0.2
            positions = await bridge.get_positions()
            assert [p.ticket for p in positions] == [fill.ticket]  # executed exactly once
    sent = events(audit_file, "slow-1")
    assert sent[0] == "RISK_PASS" and sent[-1] == "MT5_FILLED"
    assert sent.count("ZMQ_SENT") >= 2  # it was retried, with the same uuid


async def test_an_order_for_an_absent_gateway_is_never_sent_not_even_later(
    tmp_path: Path, audit_file: Path
) -> None:
    port = free_port()  # nothing listens there yet
    # No signatures on either side: a stale order delivered late would execute, so only the
    # socket's refusal to queue without a connection (IMMEDIATE) can keep it from doing so.
    async with Bridge(
        f"tcp://127.0.0.1:{port}", secret=None, request_timeout=0.5, heartbeat_timeout=0.3
    ) as bridge:
        started = time.monotonic()
        with pytest.raises(GatewayUnreachable, match="nothing was sent"):
            await bridge.send_order("EURUSD", "BUY", 0.1, uuid="nowhere-1")
        assert time.monotonic() - started < 2.0  # one request_timeout, not retries and a query
        assert events(audit_file, "nowhere-1") == ["RISK_PASS", "NOT_EXECUTED"]  # no ZMQ_SENT

        with GatewayProcess(tmp_path / "gw", secret=None, port=port) as gateway:
            # The same socket reconnects by itself; anything it had queued would go first.
            async def positions() -> tuple[list[Position]] | None:
                with contextlib.suppress(GatewayTimeout):
                    return (await bridge.get_positions(),)
                return None

            assert await eventually_async(positions, "the socket to reconnect", 25) == ([],)
            with pytest.raises(OrderRejected) as excinfo:
                await bridge.get_order("nowhere-1")
            assert excinfo.value.error_code == "ORDER_NOT_FOUND"  # it never arrived
            assert "nowhere-1" not in (gateway.data_dir / "audit.jsonl").read_text()


ORDER_EVENTS: Final = {
    "RISK_PASS",
    "RISK_REJECTED",
    "ZMQ_SENT",
    "MT5_FILLED",
    "MT5_REJECTED",
    "REJECTED",
    "NOT_EXECUTED",
    "OUTCOME_UNKNOWN",
}


async def test_every_log_line_about_an_order_carries_its_uuid(
    gateway: GatewayProcess, secret: str
) -> None:
    lines: list[str] = []
    handler = logger.add(lines.append, level="INFO", format="{message}", filter="inf_bridge")
    try:
        limits = RiskLimits(max_order_volume=1.0)
        async with Bridge(gateway.endpoint, secret=secret, risk=limits) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="logged-1")
            await bridge.close_position(fill.ticket, uuid="logged-2")
            with pytest.raises(OrderRejected):
                await bridge.close_position(fill.ticket, uuid="logged-3")
            with pytest.raises(OrderRejected):  # DUPLICATE_UUID: the gateway's refusal
                await bridge.send_order("EURUSD", "SELL", 0.2, uuid="logged-1")
            with pytest.raises(RiskRejected):
                await bridge.send_order("EURUSD", "BUY", 2.0, uuid="logged-4")
            bridge.breaker.trip("MANUAL")
            with pytest.raises(CircuitOpen):
                await bridge.send_order("EURUSD", "BUY", 0.1, uuid="logged-5")
    finally:
        logger.remove(handler)
    about_orders = [
        line for line in lines if line.startswith("[") and line[1:].split("]")[0] in ORDER_EVENTS
    ]
    assert len(about_orders) >= 12
    for line in about_orders:
        assert re.match(r"\[\w+\] logged-\d ", line), line  # e.g. "[MT5_FILLED] logged-1 OPEN ..."
    assert any(line.startswith("[MT5_FILLED] logged-1 OPEN ticket=") for line in lines)
    assert any(line.startswith("[REJECTED] logged-1 OPEN: DUPLICATE_UUID") for line in lines)


# The terminal goes away 2 s after the gateway starts, for 6 s; the gateway then reconnects
# by itself (within its backoff of a few seconds more).
OUTAGE: Final = {"disconnect_at_s": 2.0, "disconnect_for_s": 6.0}


async def test_not_executed_orders_are_sent_again_until_the_terminal_is_back(
    tmp_path: Path, secret: str, audit_file: Path
) -> None:
    with GatewayProcess(tmp_path / "gw", secret=secret, sim=OUTAGE) as gateway:
        async with (
            Bridge(gateway.endpoint, secret=secret, order_timeout=30.0) as bridge,
            Bridge(gateway.endpoint, secret=secret, retry_not_executed=False) as once,
            Bridge(gateway.endpoint, secret=secret, order_timeout=1.0) as hasty,
        ):
            await eventually_async(lambda: terminal_away(bridge), "the terminal to go away")

            # Turned off: the first answer is the answer.
            with pytest.raises(OrderRejected) as excinfo:
                await once.send_order("EURUSD", "BUY", 0.1, uuid="once-1")
            assert excinfo.value.error_code == "MT5_DISCONNECTED"
            assert events(audit_file, "once-1") == ["RISK_PASS", "ZMQ_SENT", "REJECTED"]

            # Within the deadline only, and it says so.
            with pytest.raises(OrderRejected) as excinfo:
                await hasty.send_order("EURUSD", "BUY", 0.1, uuid="hasty-1")
            assert excinfo.value.error_code == "MT5_DISCONNECTED"
            assert "order_timeout (1 s) ran out" in str(excinfo.value)
            assert len(sends(audit_file, "hasty-1")) >= 2

            # Not behind a breaker that opened meanwhile.
            order = asyncio.create_task(bridge.send_order("EURUSD", "BUY", 0.1, uuid="broken-1"))
            await eventually_async(
                lambda: len(sends(audit_file, "broken-1")) >= 2 or order.done(), "a retry"
            )
            bridge.breaker.trip("MANUAL")
            with pytest.raises(OrderRejected) as excinfo:
                await order
            assert "the circuit breaker opened (MANUAL)" in str(excinfo.value)
            bridge.breaker.reset()

            # Sent again, same uuid, until the terminal is back: then it fills, once.
            fill = await bridge.send_order("EURUSD", "BUY", 0.2, uuid="patient-1")
            assert fill.volume == pytest.approx(0.2) and not fill.duplicate
            attempts = sends(audit_file, "patient-1")
            assert len(attempts) >= 2
            assert {a.get("after") for a in attempts[1:]} == {"MT5_DISCONNECTED"}
            assert events(audit_file, "patient-1")[-1] == "MT5_FILLED"

            # The refused ones never executed, not even later.
            assert [p.ticket for p in await bridge.get_positions()] == [fill.ticket]
            for uuid in ("once-1", "hasty-1", "broken-1"):
                with pytest.raises(OrderRejected) as excinfo:
                    await bridge.get_order(uuid)
                assert excinfo.value.error_code == "ORDER_NOT_FOUND"
