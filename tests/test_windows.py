"""Windows code paths we cannot run here, covered by injecting the platform and pywin32."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from gtw_server import service
from gtw_server.testing import GatewayProcess, free_port
from plumbing.rotation import closed_files


def test_service_config_location() -> None:
    assert service.config_path({"MT5_BRIDGE_GATEWAY_CONFIG": r"D:\mt5\gw.toml"}) == Path(
        r"D:\mt5\gw.toml"
    )
    assert (
        service.config_path({"PROGRAMDATA": r"C:\ProgramData"})
        == Path(r"C:\ProgramData") / "mt5-bridge" / "gateway.toml"
    )


class FakePywin32:
    """Just enough of win32serviceutil, win32service and servicemanager."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.exits: list[int] = []
        self.statuses: list[int] = []
        fake = self

        class ServiceFramework:
            def __init__(self, args: Any) -> None:
                self.args = args

            def ReportServiceStatus(self, status: int) -> None:
                fake.statuses.append(status)

        self.serviceutil = types.ModuleType("win32serviceutil")
        self.serviceutil.ServiceFramework = ServiceFramework  # type: ignore[attr-defined]
        self.service = types.ModuleType("win32service")
        self.service.SERVICE_STOP_PENDING = 3  # type: ignore[attr-defined]
        self.manager = types.ModuleType("servicemanager")
        self.manager.LogInfoMsg = lambda m: self.events.append(f"info: {m}")  # type: ignore[attr-defined]
        self.manager.LogErrorMsg = lambda m: self.events.append(f"error: {m}")  # type: ignore[attr-defined]


@pytest.fixture
def pywin32(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePywin32]:
    fake = FakePywin32()
    monkeypatch.setitem(sys.modules, "win32serviceutil", fake.serviceutil)
    monkeypatch.setitem(sys.modules, "win32service", fake.service)
    monkeypatch.setitem(sys.modules, "servicemanager", fake.manager)
    monkeypatch.setattr(service.os, "_exit", fake.exits.append)  # never end pytest itself
    yield fake
    logger.remove()  # the service sent the logs to its file; give pytest its stderr back
    logger.add(sys.stderr)


def write_config(tmp_path: Path, port: int) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("service-secret-of-the-box")
    secret.chmod(0o600)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[gateway]\nbind = "tcp://127.0.0.1:{port}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'secret_file = "{secret}"\n'
    )
    return config


def test_service_runs_and_stops_the_gateway_gracefully(
    tmp_path: Path, pywin32: FakePywin32, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("MT5_BRIDGE_GATEWAY_CONFIG", str(write_config(tmp_path, port)))
    svc = service.service_class()(["mt5-gateway"])
    runner = threading.Thread(target=svc.SvcDoRun)  # the SCM's thread, not the main one
    runner.start()
    probe = GatewayProcess(tmp_path / "probe", port=port)  # only its readiness check is used
    probe.wait_ready(30)
    svc.SvcStop()
    runner.join(30)
    assert not runner.is_alive()
    assert pywin32.statuses == [3]  # STOP_PENDING reported
    assert pywin32.exits == []  # a clean stop is not a failure
    assert any("starting" in e for e in pywin32.events)
    assert not any(e.startswith("error") for e in pywin32.events)
    log = (tmp_path / "data" / "gateway.log").read_text()
    assert "gateway ready" in log and "gateway stopped" in log


def test_a_failing_gateway_exits_so_the_scm_restarts_it(
    tmp_path: Path, pywin32: FakePywin32, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nterminal = "mt4"\n')  # invalid: refused at load
    monkeypatch.setenv("MT5_BRIDGE_GATEWAY_CONFIG", str(config))
    service.service_class()(["mt5-gateway"]).SvcDoRun()
    assert pywin32.exits == [1]
    assert any("$.gateway.terminal" in e for e in pywin32.events if e.startswith("error"))


def test_stop_before_start_is_harmless(pywin32: FakePywin32) -> None:
    svc = service.service_class()(["mt5-gateway"])
    started = time.monotonic()
    svc.SvcStop()
    assert time.monotonic() - started < 5


def test_the_worker_is_spawned_with_python_not_the_service_host(tmp_path: Path) -> None:
    (tmp_path / "Scripts").mkdir()
    (tmp_path / "Scripts" / "python.exe").touch()
    host = str(tmp_path / "Lib" / "site-packages" / "win32" / "pythonservice.exe")
    assert service.worker_python(host, str(tmp_path)) == str(tmp_path / "Scripts" / "python.exe")
    assert service.worker_python(str(tmp_path / "Scripts" / "python.exe"), str(tmp_path)) is None


def test_the_service_host_finds_the_class_by_its_registered_name(
    pywin32: FakePywin32, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    pywin32.serviceutil.HandleCommandLine = lambda cls, **kw: calls.append({"cls": cls, **kw}) or 0  # type: ignore[attr-defined]
    assert service.main(["install"]) == 0
    (call,) = calls
    assert (
        call["serviceClassString"] == service.SERVICE_CLASS == "gtw_server.service.GatewayService"
    )
    assert call["argv"][1:] == ["install"]
    # What the host does with that string: import the module, get the attribute.
    module_name, _, class_name = service.SERVICE_CLASS.rpartition(".")
    monkeypatch.delitem(service.__dict__, "GatewayService", raising=False)
    cls = getattr(sys.modules[module_name], class_name)
    assert cls._svc_name_ == "mt5-gateway"
    monkeypatch.delitem(service.__dict__, "GatewayService")  # built with the fake pywin32


def test_the_service_keeps_its_log_files_within_their_size(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    with config.open("a", encoding="utf-8") as toml:
        toml.write('log_rotation = "1 KB"\nlog_retention_size = "2 KB"\n')
    try:
        service._prepare(config)
        for n in range(100):
            logger.info("line {} {}", n, "x" * 60)
    finally:
        logger.remove()  # the service sent the logs to its file; give pytest its stderr back
        logger.add(sys.stderr)
    rotated = closed_files(tmp_path / "data" / "gateway.log", current=True)
    assert rotated
    assert sum(f.stat().st_size for f in rotated) <= 2 * 1024
