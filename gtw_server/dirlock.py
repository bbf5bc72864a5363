"""One gateway per data directory: an exclusive OS lock held for the gateway's whole life.

Two gateways on one data directory would share a journal: the second one's startup
reconciliation frees the first one's orders in flight, and a retry then executes twice. So
the gateway locks its directory before it touches anything in it, and a second one exits at
once, naming the directory and the process that holds it.

- **POSIX**: ``flock`` on the directory itself. Deleting or replacing a file inside cannot
  undo it, and the kernel drops it when the holder dies, even by SIGKILL.
- **Windows**: ``msvcrt.locking`` on ``gateway.lock``, kept open. Windows refuses to delete an
  open file (Python opens without FILE_SHARE_DELETE), so the lock cannot be removed under
  the gateway either, and it ends with the process.

Who holds it is written to ``gateway.pid`` (JSON) once the lock is taken: the second gateway
reads it for its message. On Linux, should that file be gone, ``/proc/locks`` still names the
holder's pid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Final

from gtw_server.errors import DataDirInUse, GatewayError
from plumbing.files import atomic_write

__all__ = ["DataDirLock"]

LOCK_FILE: Final = "gateway.lock"
HOLDER_FILE: Final = "gateway.pid"


class DataDirLock:
    """The lock on ``directory``: ``acquire()`` once, ``release()`` at the end (or die)."""

    def __init__(self, directory: Path, *, platform: str = sys.platform) -> None:
        self.directory = directory
        self._platform = platform
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, alternative: str = "", **holder: Any) -> None:
        """Take the lock, or raise ``DataDirInUse`` naming the holder (and ``alternative``, a
        way out other than stopping it). ``holder`` (e.g. the bind address) is recorded in
        ``gateway.pid`` for the next one to read."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = self._open()
        except OSError as exc:
            raise GatewayError(
                f"cannot lock the data directory {self.directory}: {exc.strerror}"
            ) from None
        try:
            self._lock(fd)
        except OSError:
            os.close(fd)
            raise DataDirInUse(self._in_use_message(alternative)) from None
        self._fd = fd
        self._write_holder(holder)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            (self.directory / HOLDER_FILE).unlink()
        os.close(self._fd)  # closing the descriptor drops the lock on every platform
        self._fd = None

    # -- the platform's lock ----------------------------------------------------------------

    def _open(self) -> int:
        if self._platform == "win32":
            return os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        return os.open(self.directory, os.O_RDONLY)

    def _lock(self, fd: int) -> None:
        """Lock ``fd`` without waiting; ``OSError`` when another process holds it."""
        if self._platform == "win32":
            import msvcrt  # noqa: PLC0415 (Windows only)

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return
        import fcntl  # noqa: PLC0415 (POSIX only)

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    # -- who holds it -----------------------------------------------------------------------

    def _write_holder(self, holder: dict[str, Any]) -> None:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            **holder,
        }
        with contextlib.suppress(OSError):  # only a second gateway's message loses detail
            atomic_write(self.directory / HOLDER_FILE, json.dumps(record).encode())

    def _in_use_message(self, alternative: str) -> str:
        holder = _read_holder(self.directory / HOLDER_FILE)
        pid = holder.get("pid") or self._pid_from_proc_locks()
        if pid is None:
            who = "another gateway (its pid is not recorded)"
        else:
            who = f"another gateway (pid {pid}"
            if holder.get("bind"):
                who += f", listening on {holder['bind']}"
            if isinstance(holder.get("started"), int | float):
                started = dt.datetime.fromtimestamp(holder["started"], dt.UTC)
                who += f", started {started:%Y-%m-%d %H:%M:%S} UTC"
            who += ")"
        return (
            f"the data directory {self.directory} is in use by {who}: one gateway per data "
            "directory, or both would execute the same retried orders. Stop that one first"
            + (f", or {alternative}" if alternative else "")
        )

    def _pid_from_proc_locks(self) -> int | None:
        """The pid holding a FLOCK on the directory's inode, from ``/proc/locks`` (Linux)."""
        if self._platform != "linux":
            return None
        try:
            inode = os.stat(self.directory).st_ino
            lines = Path("/proc/locks").read_text(encoding="ascii").splitlines()
        except OSError:
            return None
        for line in lines:
            # "1: FLOCK  ADVISORY  WRITE 4242 00:2a:131078 0 EOF"
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
                return int(fields[4])
        return None


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
