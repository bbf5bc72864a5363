"""Helpers shared by the tests: wait for something observable, drive a gateway by hand.

Tests never sleep for "long enough": they poll what they wait for (a file, a journal row,
a reply) with ``eventually``, which fails with ``what`` after ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import zmq

from protocol import Close, Open, Ping, Side, encode, secret_key, sign

T = TypeVar("T")


def eventually(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    """Poll ``condition()`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.02)
    return result


async def eventually_async(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    """``eventually``, without blocking the event loop between looks."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(0.02)
    return result


def signed_open(secret: str, uuid: str, volume: float = 0.1, symbol: str = "EURUSD") -> bytes:
    now = time.time()
    order = Open(uuid=uuid, timestamp=now, symbol=symbol, type=Side.BUY, volume=volume)
    return encode(sign(secret_key(secret), order, int(now * 1000)))


def signed_close(secret: str, uuid: str, ticket: int) -> bytes:
    now = time.time()
    order = Close(uuid=uuid, timestamp=now, ticket=ticket)
    return encode(sign(secret_key(secret), order, int(now * 1000)))


def ping(uuid: str = "ping") -> bytes:
    return encode(Ping(uuid=uuid, timestamp=time.time()))


def request(endpoint: str, frame: bytes, timeout: float = 5.0) -> dict[str, Any]:
    """One round trip on a fresh DEALER; the reply as plain JSON."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(frame)
        assert sock.poll(int(timeout * 1000)), f"no reply within {timeout:g} s"
        reply: dict[str, Any] = json.loads(sock.recv())
        return reply
    finally:
        sock.close()


def journal_rows(path: Path) -> list[tuple[str, bytes | None]]:
    """(uuid, reply) of every journal row, read by another connection as a tool would."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute("SELECT uuid, reply FROM journal ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        db.close()


class LockHolder:
    """Another process holding a SQLite file's write lock, as a backup tool or an ``sqlite3``
    shell would (``BEGIN IMMEDIATE``, then nothing), until ``release()`` or ``kill()``."""

    def __init__(self, path: Path) -> None:
        code = (
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # its readline returns: it exits, and the lock goes
            self.process.wait(10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
