"""Shared fixtures: a real gateway process on a loopback port, with the simulated terminal."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support import LockHolder

from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge, add_audit_file


@pytest.fixture(autouse=True)
def no_gateway_left_behind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kill, by PID, every gateway a test started and did not stop (a failed assertion
    between start and stop must not leave a process running)."""
    started: list[GatewayProcess] = []
    start = GatewayProcess.start

    def tracked(self: GatewayProcess, *, wait: float = 30.0) -> GatewayProcess:
        started.append(self)
        return start(self, wait=wait)

    monkeypatch.setattr(GatewayProcess, "start", tracked)
    yield
    for process in started:
        process.kill()


@pytest.fixture
def secret() -> str:
    return "test-" + secrets.token_hex(16)


@pytest.fixture
def gateway(tmp_path: Path, secret: str) -> Iterator[GatewayProcess]:
    """A gateway on the simulator (markets always open), stopped by its PID afterwards."""
    process = GatewayProcess(
        tmp_path / "gateway",
        secret=secret,
        sim={"seed": 1},
        log_file=tmp_path / "gateway.log",
    )
    with process:
        yield process


@pytest.fixture
async def bridge(gateway: GatewayProcess, secret: str) -> AsyncIterator[Bridge]:
    async with Bridge(
        gateway.endpoint, secret=secret, events_endpoint=gateway.events_endpoint
    ) as client:
        yield client


@pytest.fixture
def audit_file(tmp_path: Path) -> Iterator[Path]:
    """The node's audit trail, written to ``tmp_path / "audit.jsonl"`` during the test."""
    path = tmp_path / "audit.jsonl"
    trail = add_audit_file(path)
    yield path
    trail.close()


@pytest.fixture
def lock_holders() -> Iterator[list[LockHolder]]:
    """Processes holding locks (``support.LockHolder``), killed after the test."""
    holders: list[LockHolder] = []
    yield holders
    for holder in holders:
        holder.kill()
