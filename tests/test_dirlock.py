"""One gateway per data directory: the lock on each platform, and what a second one is told."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from support import LockHolder

from gtw_server.dirlock import HOLDER_FILE, LOCK_FILE, DataDirLock
from gtw_server.errors import DataDirInUse, GatewayError


@pytest.mark.skipif(sys.platform == "win32", reason="the POSIX lock")
def test_the_lock_is_on_the_directory_and_names_its_holder(
    tmp_path: Path, lock_holders: list[LockHolder]
) -> None:
    lock_holders.append(holder := LockHolder.data_dir(tmp_path, bind="tcp://127.0.0.1:7"))
    pid = holder.process.pid
    try:
        record = json.loads((tmp_path / HOLDER_FILE).read_text())
        assert record["pid"] == pid and record["bind"] == "tcp://127.0.0.1:7"
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(tmp_path).acquire()
        assert f"{tmp_path} is in use by another gateway (pid {pid}" in str(refused.value)
        # Files deleted under it change nothing: the lock is on the directory itself.
        for path in tmp_path.iterdir():
            path.unlink()
        with pytest.raises(DataDirInUse):
            DataDirLock(tmp_path).acquire()
    finally:
        holder.release()
    lock = DataDirLock(tmp_path)  # the holder is gone, and so is its lock
    lock.acquire()
    assert lock.held and (tmp_path / HOLDER_FILE).exists()
    lock.release()
    assert not lock.held and not (tmp_path / HOLDER_FILE).exists()


class FakeMsvcrt(types.ModuleType):
    """``msvcrt.locking`` as Windows does it: one process per locked byte range."""

    LK_NBLCK = 2

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.locked: dict[tuple[int, int], int] = {}  # file -> the descriptor holding it
        self.calls: list[tuple[int, int]] = []

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        stat = os.fstat(fd)
        self.calls.append((mode, nbytes))
        file = (stat.st_dev, stat.st_ino)
        if file in self.locked and self.locked[file] != fd:
            raise PermissionError(13, "Permission denied")  # what Windows raises
        self.locked[file] = fd


def test_on_windows_a_lock_file_is_locked_and_a_second_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    first = DataDirLock(tmp_path, platform="win32")
    first.acquire(bind="tcp://0.0.0.0:5555")
    assert fake.calls == [(FakeMsvcrt.LK_NBLCK, 1)]  # non-blocking, one byte
    assert (tmp_path / LOCK_FILE).exists()
    with pytest.raises(DataDirInUse, match=rf"pid {os.getpid()}, listening on tcp://0\.0\.0\.0"):
        DataDirLock(tmp_path, platform="win32").acquire()
    first.release()


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(GatewayError, match="cannot lock the data directory"):
        DataDirLock(tmp_path / "file" / "gw").acquire()
