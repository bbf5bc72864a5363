"""Helpers shared by the tests: wait for something observable, drive a gateway by hand.

Tests never sleep for "long enough": they poll what they wait for (a file, a journal row,
a reply) with ``eventually``, which fails with ``what`` after ``timeout`` seconds; logic that
runs on timers (retries, backoff, the heartbeat) runs on a ``VirtualTimeLoop``, where its
schedule can be checked to the millisecond without waiting for it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import json
import os
import secrets
import selectors
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar, overload

import zmq
import zmq.asyncio

from gtw_server.testing import free_port
from protocol import Close, Open, Ping, Reply, Side, decode_reply, encode, secret_key, sign

if TYPE_CHECKING:
    from inf_bridge import Bridge

T = TypeVar("T")
P = ParamSpec("P")
_POLL_S: Final = 0.02


def eventually(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    """Poll ``condition()`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(_POLL_S)
    return result


@overload
async def eventually_async(
    condition: Callable[[], Awaitable[T]], what: str, timeout: float = 10.0
) -> T: ...
@overload
async def eventually_async(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T: ...
async def eventually_async(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """``eventually``, without blocking the event loop between looks; ``condition`` may be a
    coroutine function (a round trip to the gateway, say), awaited at each look."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(_POLL_S)


async def server_clock_known(bridge: Bridge, timeout: float = 60.0) -> int:
    """Beat until the gateway says the trade server's offset, and return it: a gateway with no
    zone named learns it from the first quote that moves (seconds, on a quiet market)."""

    async def said() -> tuple[int] | None:  # a tuple: an offset of 0 is an answer too
        await bridge.health.beat()
        gateway = bridge.health.gateway
        offset = None if gateway is None else gateway.server_offset_s
        return None if offset is None else (offset,)

    (offset,) = await eventually_async(said, "the gateway to learn the server's clock", timeout)
    return offset


# -- virtual time ---------------------------------------------------------------------------

_TICK_S: Final = 1e-6  # what every turn of a virtual-time loop costs: a spinning loop ends
_VIRTUAL_LIMIT_S: Final = 3600.0


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, when no I/O is ready, moves its loop's clock to the next timer
    instead of waiting for it."""

    loop: VirtualTimeLoop
    overrun = False

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready: list[tuple[Any, int]] = super().select(0)
        if ready:
            return ready
        if timeout is None:  # no timer at all: only another thread could wake the loop
            ready = super().select(5.0)
            if not ready:
                raise RuntimeError("virtual time: nothing is scheduled, nothing can happen")
            return ready
        self.loop.now += max(timeout, _TICK_S)
        if self.loop.now > _VIRTUAL_LIMIT_S and not self.overrun:
            self.overrun = True  # said once; the loop may then cancel its tasks and close
            raise RuntimeError("virtual time: still running after a virtual hour")
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock, starting at 0: ``asyncio.sleep(30)`` returns at once,
    and ``loop.time()`` then says 30 s have passed. Timers fire in the order and at the
    (virtual) times they were set for, so a test checks a schedule, not the machine's speed.
    Only for code without real I/O (a scripted transport, not a socket)."""

    def __init__(self) -> None:
        self.now = 0.0
        selector = _JumpingSelector()
        selector.loop = self
        super().__init__(selector)

    def time(self) -> float:
        return self.now


def virtual_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test on a ``VirtualTimeLoop`` (it then takes only sync fixtures)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run


def signed_open(secret: str, uuid: str, volume: float = 0.1, symbol: str = "EURUSD") -> bytes:
    now = time.time()
    order = Open(uuid=uuid, timestamp=now, symbol=symbol, type=Side.BUY, volume=volume)
    return encode(sign(secret_key(secret), order, int(now * 1000)))


def signed_close(secret: str, uuid: str, ticket: int) -> bytes:
    now = time.time()
    order = Close(uuid=uuid, timestamp=now, ticket=ticket)
    return encode(sign(secret_key(secret), order, int(now * 1000)))


def ping(uuid: str | None = None) -> bytes:
    return encode(Ping(uuid=uuid or uuid_module.uuid4().hex, timestamp=time.time()))


class Dealer:
    """A raw pipelining client: send many, then collect the replies (one, or by uuid)."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    async def send(self, frame: bytes) -> None:
        await self.sock.send(frame)

    async def recv(self, timeout: float = 10.0) -> Reply:
        return decode_reply(await asyncio.wait_for(self.sock.recv(), timeout))

    async def replies(self, count: int, timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        """The next ``count`` replies as plain JSON, by uuid."""
        found: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(timeout):
            while len(found) < count:
                reply = json.loads(await self.sock.recv())
                found[reply["uuid"]] = reply
        return found

    def close(self) -> None:
        self.sock.close()


class JsonDealer:
    """A DEALER speaking JSON written by hand, one request at a time; a reply is ``[json]``, or
    ``[json, rows]`` for bars and ticks."""

    _uuids = itertools.count(1)

    def __init__(self, endpoint: str) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, action: str, **fields: Any) -> str:
        uuid = f"raw-{next(self._uuids)}-{secrets.token_hex(4)}"
        request = {"uuid": uuid, "action": action, "timestamp": time.time(), **fields}
        self.sock.send(json.dumps(request).encode())
        return uuid

    def recv(self, timeout: float = 10.0) -> tuple[dict[str, Any], list[bytes]]:
        """The next reply and the frames after it; fails (never hangs) when none comes."""
        assert self.sock.poll(int(timeout * 1000)), f"no reply within {timeout:g} s"
        first, *rest = self.sock.recv_multipart()
        reply: dict[str, Any] = json.loads(first)
        return reply, rest

    def ask(self, action: str, **fields: Any) -> tuple[dict[str, Any], list[bytes]]:
        uuid = self.send(action, **fields)
        reply, rest = self.recv()
        assert reply["uuid"] == uuid and reply["action"] == action, reply
        return reply, rest

    def ok(self, action: str, **fields: Any) -> dict[str, Any]:
        """A reply that must be OK, with no frame after it."""
        reply, rest = self.ask(action, **fields)
        assert reply["status"] == "OK", reply
        assert rest == []
        return reply

    def alive(self) -> None:
        """The gateway still answers PING on this socket (and nothing else was queued)."""
        assert self.ok("PING")["mt5_connected"] is True

    def close(self) -> None:
        self.sock.close()


def read_replies(endpoint: str, metrics_port: int) -> dict[str, float]:
    """The gateway's count of read replies (GET_*) sent, by action and status.

    The gateway counts a reply just after sending it, in the same step of its event loop; a
    PING answered on a fresh socket first means every earlier reply has been counted."""
    client = JsonDealer(endpoint)
    try:
        client.alive()
    finally:
        client.close()
    return {
        name: value
        for name, value in scrape(metrics_port).items()
        if name.startswith('mt5_gateway_requests_total{action="GET_')
    }


def request(endpoint: str, *frames: bytes, timeout: float = 5.0) -> dict[str, Any]:
    """One round trip on a fresh DEALER; the reply as plain JSON."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send_multipart(list(frames))
        assert sock.poll(int(timeout * 1000)), f"no reply within {timeout:g} s"
        reply: dict[str, Any] = json.loads(sock.recv())
        return reply
    finally:
        sock.close()


def run_gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gtw_server ARGS`` on a free loopback port (a ``--bind`` in ``args`` wins),
    with no secret from this process's environment unless ``env`` gives one; run to its end."""
    base = {k: v for k, v in os.environ.items() if k != "MT5_BRIDGE_SECRET"}
    return subprocess.run(
        [sys.executable, "-m", "gtw_server", "--bind", f"tcp://127.0.0.1:{free_port()}", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def scrape(port: int) -> dict[str, float]:
    """The samples a ``/metrics`` endpoint on ``port`` serves, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def metric(port: int, name: str) -> float:
    """One sample; a ``name`` that stops inside the labels is the sum over the rest of them."""
    samples = scrape(port)
    if "{" in name and "}" not in name:
        return sum(value for key, value in samples.items() if key.startswith(name))
    return samples.get(name, 0.0)


def journal_rows(path: Path) -> list[tuple[str, bytes | None]]:
    """(uuid, reply) of every journal row, read by another connection as a tool would."""
    return _read(path, "SELECT uuid, reply FROM journal ORDER BY id", [])


def journaled(data_dir: Path, uuid: str) -> bool:
    """Whether the gateway with ``data_dir`` has admitted (journaled) the order ``uuid``."""
    return any(row[0] == uuid for row in journal_rows(data_dir / "journal.sqlite3"))


def stored_deals(path: Path) -> int:
    """Trade deals in a simulated terminal's state file (the opening deposit left out), read by
    another connection: what a restarted worker would see."""
    # DEAL_TYPE_BALANCE is 2
    count: int = _read(path, "SELECT COUNT(*) FROM history_deals WHERE type != 2", [(0,)])[0][0]
    return count


def _read(path: Path, query: str, missing: list[Any]) -> list[Any]:
    """The rows of ``query`` on the SQLite file ``path``, opened read-only; ``missing`` while
    the file or its tables are not there yet (or the file is locked for a moment)."""
    if not path.exists():
        return missing
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    except sqlite3.OperationalError:
        return missing
    finally:
        db.close()


def audit_lines(path: Path, uuid: str) -> list[dict[str, Any]]:
    """The records of an audit file about order ``uuid``."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["uuid"] == uuid]


def events(path: Path, uuid: str) -> list[str]:
    """The stages an audit file records of order ``uuid``, in order."""
    return [line["event"] for line in audit_lines(path, uuid)]


def sends(path: Path, uuid: str) -> list[dict[str, Any]]:
    """The ``ZMQ_SENT`` records of order ``uuid``: one per attempt."""
    return [line for line in audit_lines(path, uuid) if line["event"] == "ZMQ_SENT"]


async def terminal_away(bridge: Bridge) -> bool:
    """Whether a heartbeat taken now says the gateway's terminal is disconnected."""
    await bridge.health.beat()
    return bridge.health.mt5_connected is False


class LockHolder:
    """Another process holding a lock until ``release()`` or ``kill()``: ``take`` is the
    Python that takes it (``sqlite`` and ``data_dir`` below)."""

    def __init__(self, take: str) -> None:
        code = f"import sys\n{take}\nprint('locked', flush=True)\nsys.stdin.readline()\n"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "locked":
            self.kill()
            raise AssertionError(f"the lock was not taken: {take}")

    @classmethod
    def sqlite(cls, path: Path) -> LockHolder:
        """A SQLite file's write lock, as a backup tool or an ``sqlite3`` shell holds it
        (``BEGIN IMMEDIATE``, then nothing)."""
        return cls(
            "import sqlite3\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')"
        )

    @classmethod
    def data_dir(cls, directory: Path, bind: str) -> LockHolder:
        """A gateway's lock on its data directory, as a gateway bound to ``bind`` holds it."""
        return cls(
            "from pathlib import Path\n"
            "from gtw_server.dirlock import DataDirLock\n"
            f"DataDirLock(Path({str(directory)!r})).acquire(bind={bind!r})"
        )

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # its readline returns: it exits, and the lock goes
            self.process.wait(10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
