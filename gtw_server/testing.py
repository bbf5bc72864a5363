"""A test harness, not part of the gateway's own run: start a gateway as a child process on a
loopback port, as the end-to-end tests, the demo and the benchmark do.

    with GatewayProcess(data_dir, secret=secrets.token_hex(32), sim={"seed": 7}) as gateway:
        ...  # talk to gateway.endpoint
    # stopped with SIGTERM (CTRL_BREAK on Windows) by its PID, killed if it would not stop

The secret reaches the child through ``MT5_BRIDGE_SECRET`` in its environment, never its
command line. ``sim`` and ``gateway`` become the ``[sim]`` and ``[gateway]`` tables of a TOML
config file written into ``data_dir``; ``[sim] always_open`` is true unless ``sim`` sets it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid as uuid_module
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import zmq
import zmq.auth

from protocol import Ping, Status, decode_reply, encode

__all__ = ["GatewayProcess", "ServerProcess", "free_port"]

Scalar = str | int | float | bool
Value = Scalar | list[str] | Mapping[str, "Value"]  # a mapping is a sub-table
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_POLL_MS: Final = 200
_QUIET_PORTS: Final = (20_000, 32_000)  # below every OS's default ephemeral range
_PORT_TRIES: Final = 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Taken below the ephemeral range (Linux 32768-60999, macOS and Windows 49152-65535), which
    is what ``bind(0)`` hands out and also where every outgoing connection's own port comes
    from: a port from there can be taken by some client's connection between this check and
    the server's bind (seen: a gateway's event socket failing to start with EADDRINUSE)."""
    for _ in range(_PORT_TRIES):
        port = random.randrange(*_QUIET_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # something listens there: try another
            return port
    raise RuntimeError(f"no free port in {_QUIET_PORTS} after {_PORT_TRIES} tries")


def _toml_value(value: Scalar | list[str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (``"EURUSD.m"``)."""
    return key if _BARE_KEY.fullmatch(key) else _toml_value(key)


def _toml(tables: Mapping[str, Mapping[str, Value]]) -> str:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        subtables = {}
        for key, value in values.items():
            if isinstance(value, Mapping):
                subtables[f"{table}.{_toml_key(key)}"] = value
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        lines.append("")
        if subtables:
            lines.append(_toml(subtables))
    return "\n".join(lines)


class ServerProcess(ABC):
    """A server child process on a loopback port that answers PING; stopped by its PID.

    Subclasses say how to start it (``command``, ``environment``). ``curve`` = (the server's
    public certificate, this client's secret certificate) makes the readiness PING use CURVE.
    """

    name = "server"

    def __init__(
        self,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        ready_curve: tuple[Path, Path] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.log_file = log_file
        self._ready_curve = ready_curve
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts it."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"the {self.name} is not running")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self, *, wait: float = 30.0) -> Self:
        """Start the process and wait (up to ``wait`` s) until it answers PING."""
        flags = 0
        if sys.platform == "win32":  # so that CTRL_BREAK reaches the child alone
            flags = subprocess.CREATE_NEW_PROCESS_GROUP
        if self.log_file is not None:
            self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            creationflags=flags,
        )
        try:
            self.wait_ready(wait)
        except BaseException:
            self.stop()  # never leave a half-started process behind
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Block until the process answers a PING; raise ``RuntimeError`` if it exits first
        or does not answer within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise RuntimeError(f"the {self.name} exited with code {self.returncode} at start")
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if self._ready_curve is not None:
                server_cert, client_cert = self._ready_curve
                sock.curve_serverkey, _ = zmq.auth.load_certificate(server_cert)
                sock.curve_publickey, sock.curve_secretkey = zmq.auth.load_certificate(client_cert)
            try:
                sock.connect(self.endpoint)
                ping = Ping(uuid=uuid_module.uuid4().hex, timestamp=time.time())
                sock.send(encode(ping))
                if sock.poll(_POLL_MS * 5) and decode_reply(sock.recv()).status is Status.OK:
                    return
            finally:
                sock.close()
            time.sleep(_POLL_MS / 1000)
        raise RuntimeError(f"the {self.name} did not answer PING on {self.endpoint} in {timeout} s")

    def stop(self, timeout: float = 20.0) -> int:
        """Ask it to stop (SIGTERM; CTRL_BREAK on Windows) and wait; kill it if it has not
        exited within ``timeout``. Returns its exit code."""
        process = self._process
        if process is None:
            raise RuntimeError(f"the {self.name} was never started")
        if process.poll() is None:
            if sys.platform == "win32":
                process.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return process.returncode

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit on its own; return its exit code."""
        if self._process is None:
            raise RuntimeError(f"the {self.name} was never started")
        return self._process.wait(timeout)

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self.stop()


class GatewayProcess(ServerProcess):
    """A gateway child process on a loopback port, with its own data directory."""

    name = "gateway"

    def __init__(
        self,
        data_dir: Path,
        *,
        secret: str | None = None,
        port: int | None = None,
        sim: Mapping[str, Value] | None = None,
        gateway: Mapping[str, Value] | None = None,
        args: Sequence[str] = (),
        log_file: Path | None = None,
        log_level: str = "INFO",
        curve: tuple[Path, Path, Path] | None = None,
    ) -> None:
        """``curve`` = (the gateway's .key_secret, the allowed clients' directory, one client's
        .key_secret to check readiness with) turns CURVE on."""
        ready_curve = None if curve is None else (curve[0], curve[2])
        super().__init__(port=port, log_file=log_file, ready_curve=ready_curve)
        self.data_dir = data_dir
        self.secret = secret
        self.log_level = log_level
        self.config_file = data_dir / "gateway.toml"
        self._tables: dict[str, Mapping[str, Value]] = {
            "gateway": dict(gateway or {}),
            # Markets never close unless ``sim`` says so: the tests, the demo and the benchmark
            # run on a Saturday too. The server's clock is UTC unless ``sim`` names a zone: the
            # tests of times across zones say so (``server_timezone = "EET"``).
            "sim": {"always_open": True, "server_timezone": "UTC", **(sim or {})},
        }
        self._args = list(args)
        self._curve = curve
        # The event socket on a port of its own (the default, bind's port + 1, may be taken).
        self.events_endpoint = str(
            self._tables["gateway"].get("events") or f"tcp://127.0.0.1:{free_port()}"
        )

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "gtw_server", "--config", str(self.config_file)]
        command += ["--bind", self.endpoint, "--data-dir", str(self.data_dir)]
        command += ["--log-level", self.log_level, "--events", self.events_endpoint]
        if self.secret is None:
            command.append("--no-signature-validation")
        if self._curve is not None:
            server_cert, clients_dir, _ = self._curve
            command += ["--curve-secret-key", str(server_cert), "--curve-clients", str(clients_dir)]
        return command + self._args

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("MT5_BRIDGE_SECRET", None)
        if self.secret is not None:
            env["MT5_BRIDGE_SECRET"] = self.secret
        return env

    def start(self, *, wait: float = 30.0) -> Self:
        """Write the config file, start the gateway and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(_toml(self._tables), encoding="utf-8")
        return super().start(wait=wait)
