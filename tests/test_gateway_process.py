"""The gateway as a program: how it refuses to start, and how it stops."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from support import eventually, run_gateway

from gtw_server.testing import GatewayProcess, free_port
from inf_bridge import Bridge, OrderRejected

SECRET = "a-test-secret-of-32-characters!"


def test_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = run_gateway("--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "--secret-file" in result.stderr
    assert "MT5_BRIDGE_SECRET" in result.stderr
    assert not (tmp_path / "journal.sqlite3").exists()  # refused before touching anything


def test_real_terminal_without_the_package_fails_clearly(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("the MetaTrader5 package may be installed on Windows")
    result = run_gateway(
        "--terminal", "mt5", "--data-dir", str(tmp_path), env={"MT5_BRIDGE_SECRET": SECRET}
    )
    assert result.returncode == 2
    assert "MetaTrader5 package is not installed" in result.stderr
    assert "mt5-bridge[mt5]" in result.stderr


def test_exits_when_its_port_is_taken(tmp_path: Path) -> None:
    # A service manager restarts a gateway that exits; one that hangs on would never listen.
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_gateway(
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path),
            env={"MT5_BRIDGE_SECRET": SECRET},
        )
    assert result.returncode != 0
    assert "cannot bind" in result.stderr


def children(pid: int) -> list[int]:
    """Child PIDs of ``pid``, whichever of its threads started them (Linux /proc)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stop_signals_end_gateway_and_worker(tmp_path: Path, sig: signal.Signals) -> None:
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(tmp_path / "gw", secret=SECRET, log_file=log).start()
    workers = children(gateway.pid)
    assert workers, "the terminal worker process should be running"

    os.kill(gateway.pid, sig)
    assert gateway.wait(timeout=20) == 0
    eventually(lambda: not any(alive(w) for w in workers), "the worker to leave", timeout=5)
    text = log.read_text()
    assert f"{sig.name} received" in text and "gateway stopped" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_leaves_when_the_gateway_is_killed(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path / "gw", secret=SECRET).start()
    workers = children(gateway.pid)
    gateway.kill()
    assert workers
    eventually(lambda: not any(alive(w) for w in workers), "the worker to leave", timeout=5)


@pytest.mark.parametrize(
    ("sim", "gateway", "message"),
    [
        ({"trade_mode": "real"}, {}, "allow_real = true"),
        ({"login": 1234}, {"expect_login": 999}, "not 999"),
        ({}, {"expect_server": "Broker-Live"}, "expect_server"),
    ],
    ids=["real-account", "wrong-login", "wrong-server"],
)
def test_refuses_to_trade_an_unexpected_account(
    tmp_path: Path, sim: dict[str, object], gateway: dict[str, object], message: str
) -> None:
    log = tmp_path / "gateway.log"
    process = GatewayProcess(
        tmp_path / "gw",
        secret=SECRET,
        sim=sim,  # type: ignore[arg-type]
        gateway=gateway,  # type: ignore[arg-type]
        log_file=log,
    )
    with pytest.raises(RuntimeError, match="exited with code 2"):
        process.start()
    process.stop()
    assert message in log.read_text()


def test_a_real_account_with_allow_real_starts_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    process = GatewayProcess(
        tmp_path / "gw",
        secret=SECRET,
        sim={"trade_mode": "real", "login": 777},
        gateway={"allow_real": True, "expect_login": 777},
        log_file=log,
    )
    with process:
        pass
    banner = next(line for line in log.read_text().splitlines() if "gateway ready" in line)
    for part in (
        "terminal SIM",
        "login 777",
        "REAL",
        "balance 10,000.00 USD",
        "CURVE off",
        "signatures on",
        process.endpoint,
    ):
        assert part in banner


async def test_ping_warns_when_the_terminal_will_refuse_orders(tmp_path: Path) -> None:
    with GatewayProcess(tmp_path / "gw", secret=SECRET, sim={"algo_trading": False}) as gateway:
        async with Bridge(gateway.endpoint, secret=SECRET) as bridge:
            assert bridge.health.gateway is not None
            assert any("Algo Trading is off" in w for w in bridge.health.gateway.warnings)


async def test_ping_warns_of_an_unsafe_gateway(tmp_path: Path) -> None:
    gateway = {"signature_validation": False, "insecure": True}
    with GatewayProcess(tmp_path / "gw", secret=SECRET, gateway=gateway) as process:
        async with Bridge(process.endpoint, secret=SECRET) as bridge:
            info = bridge.health.gateway
            assert info is not None and info.signature_validation is False
            assert any("signature validation is OFF" in w for w in info.warnings)
            assert any("without CURVE (--insecure)" in w for w in info.warnings)
    with GatewayProcess(tmp_path / "safe", secret=SECRET) as process:
        async with Bridge(process.endpoint, secret=SECRET) as bridge:
            assert bridge.health.gateway is not None and bridge.health.gateway.warnings == []


async def test_the_console_shows_each_fill_at_info_with_its_uuid(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with GatewayProcess(tmp_path / "gw", secret=SECRET, log_file=log) as gateway:
        async with Bridge(gateway.endpoint, secret=SECRET) as bridge:
            fill = await bridge.send_order("EURUSD", "BUY", 0.1, uuid="seen-1")
            await bridge.halt("lines")
            with pytest.raises(OrderRejected):
                await bridge.send_order("EURUSD", "BUY", 0.1, uuid="seen-2")
    lines = log.read_text().splitlines()
    [filled] = [line for line in lines if "[MT5_FILLED]" in line]
    assert "| INFO" in filled and f"[MT5_FILLED] seen-1 OPEN ticket={fill.ticket}" in filled
    assert any("[REJECTED] seen-2 OPEN: TRADING_HALTED" in line for line in lines)


async def test_a_burst_of_fills_shows_twenty_on_the_console_then_a_count(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with GatewayProcess(tmp_path / "gw", secret=SECRET, log_file=log) as gateway:
        async with Bridge(gateway.endpoint, secret=SECRET) as bridge:
            for n in range(30):  # within a window of 10 s
                await bridge.send_order("EURUSD", "BUY", 0.01, uuid=f"burst-{n}")
    lines = log.read_text().splitlines()
    shown = [line for line in lines if "[MT5_FILLED] burst-" in line]
    assert len(shown) == 20
    assert any("10 more order outcomes in the last 10 s or less" in line for line in lines)
    audit = (tmp_path / "gw" / "audit.jsonl").read_text().splitlines()
    filled = [line for line in audit if '"MT5_FILLED"' in line and "burst-" in line]
    assert len(filled) == 30  # the audit trail has every one


def test_a_secret_under_16_bytes_is_refused_on_both_sides(tmp_path: Path) -> None:
    short = "hunter2-hunter2"  # 15 bytes
    result = run_gateway("--data-dir", str(tmp_path), env={"MT5_BRIDGE_SECRET": short})
    assert result.returncode == 2
    assert "15 bytes; at least 16 are required" in result.stderr
    with pytest.raises(ValueError, match="at least 16"):
        Bridge("tcp://127.0.0.1:5555", secret=short)
    with pytest.raises(ValueError, match="at least 16"):
        Bridge("tcp://127.0.0.1:5555", secret=short.encode())  # a key given as bytes too
