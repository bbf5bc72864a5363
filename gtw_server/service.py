"""Run the gateway as a Windows service (pywin32, installed with the ``mt5`` extra).

    python -m gtw_server.service --startup auto install     # deploy/windows/install.ps1 does it
    python -m gtw_server.service start | stop | remove

The service reads its configuration from the file named by ``MT5_BRIDGE_GATEWAY_CONFIG`` (the
installer sets it in the service's environment), else
``%PROGRAMDATA%\\mt5-bridge\\gateway.toml``. It has no console: log lines go to
``[gateway] log_file`` (``gateway.log`` under the data directory unless set), the audit trail
to ``audit.jsonl`` beside it; on Windows each file is named by its start time instead
(``gateway.<time>.log``, ``audit.<time>.jsonl``: see ``gtw_server.log``).

Stopping the service stops the gateway gracefully (orders in flight finish, their replies go
out). A gateway that exits with an error ends the process with its exit code, so that the
Service Control Manager's recovery actions (restart on failure) apply.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from loguru import logger

from gtw_server.config import CONFIG_FILE_ENV, Config, load_config
from gtw_server.log import configure_logging
from gtw_server.server import Gateway

__all__ = [
    "SERVICE_CLASS",
    "SERVICE_NAME",
    "config_path",
    "main",
    "service_class",
    "worker_python",
]

SERVICE_NAME: Final = "mt5-gateway"
SERVICE_CLASS: Final = "gtw_server.service.GatewayService"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the service finds its configuration."""
    env = os.environ if env is None else env
    if env.get(CONFIG_FILE_ENV):
        return Path(env[CONFIG_FILE_ENV])
    program_data = env.get("PROGRAMDATA", r"C:\ProgramData")
    return Path(program_data) / "mt5-bridge" / "gateway.toml"


def worker_python(executable: str, prefix: str) -> str | None:
    """The interpreter the terminal worker must be spawned with, when the service host is not
    one: pywin32 runs services in ``pythonservice.exe``, which multiprocessing would
    otherwise start as the worker, and fail."""
    if Path(executable).name.lower() != "pythonservice.exe":
        return None
    for candidate in (Path(prefix) / "Scripts" / "python.exe", Path(prefix) / "python.exe"):
        if candidate.exists():
            return str(candidate)
    return str(Path(prefix) / "python.exe")


def _prepare(path: Path) -> Config:
    """Load the configuration and send the logs to files (a service has no console)."""
    config = load_config(config_file=path)
    gateway = config.gateway
    configure_logging(
        gateway.log_level,
        file=config.data_dir / (gateway.log_file or "gateway.log"),
        rotation=gateway.log_rotation,
        retention=gateway.log_retention,
        retention_size=gateway.log_retention_size,
        console=False,
    )
    return config


def service_class() -> type[Any]:
    """The pywin32 service class (pywin32 is imported only when this is called)."""
    serviceutil = importlib.import_module("win32serviceutil")
    service = importlib.import_module("win32service")
    servicemanager = importlib.import_module("servicemanager")

    class GatewayService(serviceutil.ServiceFramework):  # type: ignore[misc,name-defined]
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = "MT5 bridge gateway"
        _svc_description_ = (
            "Validates, journals and executes orders from strategy nodes through the "
            "MetaTrader 5 terminal."
        )

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self.gateway: Gateway | None = None

        def SvcDoRun(self) -> None:  # noqa: N802 (pywin32's name)
            servicemanager.LogInfoMsg(f"{SERVICE_NAME}: starting with {config_path()}")
            python = worker_python(sys.executable, sys.prefix)
            if python is not None:
                multiprocessing.set_executable(python)
            try:
                self.gateway = Gateway(_prepare(config_path()))
                # The SCM calls this on a thread of its own, where signal handlers cannot be
                # installed; SvcStop stops the gateway instead.
                code = self.gateway.run(handle_signals=False)
            except Exception as exc:  # reported to the Event Log, then a failure exit
                # One line, no traceback: loguru's default traceback shows variable values,
                # and the environment holds the secret.
                servicemanager.LogErrorMsg(f"{SERVICE_NAME}: {exc}")
                logger.error("the gateway service failed: {}", exc)
                code = 1
            if code != 0:
                servicemanager.LogErrorMsg(f"{SERVICE_NAME}: exited with code {code}")
                os._exit(code)  # an abnormal end: the SCM's recovery actions restart it

        def SvcStop(self) -> None:  # noqa: N802 (pywin32's name)
            self.ReportServiceStatus(service.SERVICE_STOP_PENDING)
            if self.gateway is not None:
                self.gateway.stop_threadsafe()

    return GatewayService


def __getattr__(name: str) -> Any:
    """``gtw_server.service.GatewayService``, built on first use: pywin32's service host
    imports this module and looks the class up by that name (``SERVICE_CLASS``), while on
    Linux, where pywin32 does not exist, importing this module must still work."""
    if name == "GatewayService":
        cls = globals()[name] = service_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """``python -m gtw_server.service install|start|stop|remove|debug``; the exit code."""
    serviceutil = importlib.import_module("win32serviceutil")
    # By name, not as the __main__ module's class: the service host imports it afresh.
    code: int = serviceutil.HandleCommandLine(
        service_class(),
        serviceClassString=SERVICE_CLASS,
        argv=[sys.argv[0], *(argv or sys.argv[1:])],
    )
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
