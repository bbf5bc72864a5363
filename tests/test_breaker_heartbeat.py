"""The circuit breaker and the heartbeat, driven by a scripted PING.

The heartbeat's schedule is checked on a ``VirtualTimeLoop``: beats are due at exact times,
whatever the speed of the machine running the test."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from pathlib import Path

import pytest
from support import virtual_time

from inf_bridge import (
    BreakerChange,
    CircuitBreaker,
    GatewayTimeout,
    HeartbeatMonitor,
    add_audit_file,
)
from protocol import Reply, Status


def test_breaker_reasons_and_reset() -> None:
    breaker = CircuitBreaker()
    changes: list[BreakerChange] = []
    remove = breaker.add_listener(changes.append)
    assert not breaker.is_open and breaker.reason is None

    breaker.trip("HEARTBEAT_FAILURE")
    breaker.trip("HEARTBEAT_FAILURE")  # already open: no second change
    assert breaker.is_open and breaker.reason == "HEARTBEAT_FAILURE"
    breaker.trip("DAILY_LOSS")  # a reason that needs a human replaces one that does not
    assert breaker.reason == "DAILY_LOSS"
    breaker.recovered()  # a healthy heartbeat does not close a risk trip
    assert breaker.is_open
    breaker.trip("HEARTBEAT_FAILURE")
    assert breaker.reason == "DAILY_LOSS"
    breaker.reset()
    assert not breaker.is_open
    remove()
    breaker.trip("MANUAL")
    assert [(c.is_open, c.reason) for c in changes] == [
        (True, "HEARTBEAT_FAILURE"),
        (True, "DAILY_LOSS"),
        (False, None),
    ]


async def test_breaker_changes_as_an_async_iterator() -> None:
    breaker = CircuitBreaker()
    seen: list[BreakerChange] = []

    async def watch() -> None:
        async for change in breaker.changes():
            seen.append(change)
            if not change.is_open:
                return

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)  # one turn of the loop: the watcher subscribes
    breaker.trip("HEARTBEAT_FAILURE")
    breaker.recovered()
    await asyncio.wait_for(task, 1)
    assert [c.is_open for c in seen] == [True, False]


class ScriptedGateway:
    """PING replies from a script: a float is a reply after that many seconds, ``None`` a
    timeout, ``False`` a prompt reply saying the terminal is disconnected. ``pinged`` holds
    when each PING was sent, on the event loop's clock."""

    def __init__(self, script: list[float | bool | None], server_offset: float = 0.0) -> None:
        self.script = deque(script)
        self.offset = server_offset
        self.now = 1_000.0
        self.pinged: list[float] = []

    def clock(self) -> float:
        return self.now

    async def ping(self, timeout: float) -> Reply:
        self.pinged.append(asyncio.get_running_loop().time())
        step = self.script.popleft()
        if step is None:
            raise GatewayTimeout("no reply")
        rtt = 0.001 if isinstance(step, bool) else step
        reply = Reply(
            uuid="p",
            action="PING",
            status=Status.OK,
            timestamp=self.now + rtt / 2 + self.offset,
            mt5_connected=step is not False,
        )
        await asyncio.sleep(rtt)
        self.now += rtt
        return reply


def monitor(gateway: ScriptedGateway, breaker: CircuitBreaker) -> HeartbeatMonitor:
    return HeartbeatMonitor(
        gateway.ping,
        breaker,
        interval=0.01,
        timeout=0.2,
        failures=3,
        recovery_beats=2,
        clock=gateway.clock,
    )


async def test_three_misses_fail_and_open_the_breaker_healthy_beats_close_it() -> None:
    breaker = CircuitBreaker()
    gateway = ScriptedGateway([0.001, None, None, None, 0.001, 0.001])
    health = monitor(gateway, breaker)
    states = []
    for _ in range(6):
        await health.beat()
        states.append((health.state, breaker.is_open))
    assert states == [
        ("HEALTHY", False),
        ("DEGRADED", False),
        ("DEGRADED", False),
        ("FAILED", True),
        ("HEALTHY", True),  # one healthy beat is not enough to trust the link again
        ("HEALTHY", False),
    ]
    assert health.misses == 3 and health.beats == 6 and health.consecutive_failures == 0


async def test_slow_beats_and_a_disconnected_terminal_degrade() -> None:
    breaker = CircuitBreaker()
    health = monitor(ScriptedGateway([0.15, False, 0.002]), breaker)
    await health.beat()
    assert health.state == "DEGRADED"  # slower than timeout / 2
    await health.beat()
    assert health.state == "DEGRADED" and health.mt5_connected is False
    await health.beat()
    assert health.state == "HEALTHY"
    assert not breaker.is_open


async def test_round_trip_statistics() -> None:
    gateway = ScriptedGateway([0.02, 0.01, 0.03])
    health = monitor(gateway, CircuitBreaker())
    for _ in range(3):
        await health.beat()
    assert health.last_rtt is not None and health.last_rtt >= 0.03
    assert health.min_rtt is not None and health.min_rtt >= 0.01
    assert health.avg_rtt is not None and health.max_rtt is not None
    assert health.min_rtt < health.avg_rtt < health.max_rtt
    assert health.p99_rtt == health.max_rtt == health.last_rtt


async def test_clock_offset_is_estimated_from_the_gateways_timestamps() -> None:
    gateway = ScriptedGateway([0.001, 0.001], server_offset=2.5)
    health = monitor(gateway, CircuitBreaker())
    await health.beat()
    assert health.clock_offset == pytest.approx(2.5, abs=0.01)


async def run_for(health: HeartbeatMonitor, seconds: float) -> None:
    """Let ``health.run()`` beat for ``seconds``, then cancel it."""
    task = asyncio.create_task(health.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def since_first(times: list[float]) -> list[float]:
    return [t - times[0] for t in times]


@virtual_time
async def test_run_beats_every_interval_until_cancelled() -> None:
    gateway = ScriptedGateway([0.001] * 20)
    health = monitor(gateway, CircuitBreaker())  # a beat every 0.01 s
    await run_for(health, 0.105)
    # On a fixed schedule: the 1 ms round trips do not push the beats back.
    assert since_first(gateway.pinged) == pytest.approx([n / 100 for n in range(11)], abs=1e-4)
    assert health.beats == 11 and health.state == "HEALTHY"


@virtual_time
async def test_beats_keep_their_schedule_when_pings_time_out() -> None:
    loop = asyncio.get_running_loop()
    pinged: list[float] = []
    opened: list[float] = []

    async def silent_gateway(timeout: float) -> Reply:
        pinged.append(loop.time())
        await asyncio.sleep(timeout)
        raise GatewayTimeout("no reply")

    breaker = CircuitBreaker()
    breaker.add_listener(lambda change: opened.append(loop.time()))
    health = HeartbeatMonitor(silent_gateway, breaker, interval=0.5, timeout=0.4, failures=3)
    await run_for(health, 1.45)
    # One interval apart, not interval + timeout (0.9 s): the third miss opens the breaker at
    # 1.4 s, not 2.2.
    assert since_first(pinged) == pytest.approx([0.0, 0.5, 1.0], abs=1e-4)
    assert since_first([pinged[0], *opened]) == pytest.approx([0.0, 1.4], abs=1e-4)
    assert breaker.reason == "HEARTBEAT_FAILURE" and health.consecutive_failures == 3


@virtual_time
async def test_a_beat_longer_than_an_interval_is_followed_at_once_without_a_burst() -> None:
    gateway = ScriptedGateway([0.025, 0.001, 0.001, 0.001, 0.001])
    health = monitor(gateway, CircuitBreaker())  # a beat every 0.01 s
    await run_for(health, 0.05)
    # The beats missed during the slow one are not made up for: the schedule starts again.
    assert since_first(gateway.pinged) == pytest.approx([0.0, 0.025, 0.035, 0.045], abs=1e-4)


async def test_misses_past_the_limit_read_right(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = add_audit_file(path)
    try:
        health = monitor(ScriptedGateway([None] * 5), CircuitBreaker())
        for _ in range(5):
            await health.beat()
    finally:
        trail.close()
    messages = [
        json.loads(line)["message"]
        for line in path.read_text().splitlines()
        if '"HEARTBEAT_FAIL"' in line
    ]
    assert messages[0].startswith("[HEARTBEAT_FAIL] 1 missed in a row (the breaker opens at 3)")
    assert messages[3].startswith("[HEARTBEAT_FAIL] 4 missed in a row (the breaker opens at 3)")
    assert not any(" of 3" in message for message in messages)


def signed_reply(authenticated: bool | None, auth_error: str | None = None) -> Reply:
    return Reply(
        uuid="p",
        action="PING",
        status=Status.OK,
        timestamp=1_000.0,
        mt5_connected=True,
        authenticated=authenticated,
        auth_error=auth_error,
        error_msg=None if auth_error is None else "risk_signature does not match the request",
    )


async def test_a_refused_secret_opens_the_breaker_until_a_human_resets_it() -> None:
    replies = deque(
        [signed_reply(True), signed_reply(False, "SIGNATURE_INVALID")]
        + [signed_reply(False, "SIGNATURE_INVALID")] * 3
        + [signed_reply(False, "SIGNATURE_INVALID")]
    )

    async def ping(timeout: float) -> Reply:
        return replies.popleft()

    breaker = CircuitBreaker()
    health = HeartbeatMonitor(ping, breaker, failures=3, recovery_beats=2, clock=lambda: 1_000.0)
    await health.beat()
    assert (health.authenticated, health.state, breaker.is_open) == (True, "HEALTHY", False)
    await health.beat()
    assert breaker.reason == "SECRET_REFUSED"
    assert health.authenticated is False and health.auth_error == "SIGNATURE_INVALID"
    assert health.auth_message == "risk_signature does not match the request"
    assert health.state == "DEGRADED"  # answered, but nothing could be traded through it
    for _ in range(3):  # answered beats: not a heartbeat trip, so they do not close it
        await health.beat()
    assert breaker.reason == "SECRET_REFUSED"
    breaker.reset()  # a human, believing the secret fixed; it is not: open again
    await health.beat()
    assert breaker.reason == "SECRET_REFUSED"


async def test_an_expired_ping_signature_is_the_clocks_not_the_secret() -> None:
    async def ping(timeout: float) -> Reply:
        return signed_reply(False, "SIGNATURE_EXPIRED")

    breaker = CircuitBreaker()
    health = HeartbeatMonitor(ping, breaker, clock=lambda: 1_000.0)
    await health.beat()
    assert health.auth_error == "SIGNATURE_EXPIRED" and health.state == "DEGRADED"
    assert not breaker.is_open


def test_a_refused_secret_outranks_a_heartbeat_trip() -> None:
    breaker = CircuitBreaker()
    breaker.trip("HEARTBEAT_FAILURE")
    breaker.trip("SECRET_REFUSED")
    breaker.recovered()  # the heartbeat's recovery does not close it
    assert breaker.reason == "SECRET_REFUSED"
