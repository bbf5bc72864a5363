"""Small files replaced whole and durably: the kill switch, the day's start, the journal's
record, the data directory's holder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gtw_server.killswitch import KillSwitch
from plumbing.files import atomic_write


def test_the_content_is_replaced_whole_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_content_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, b"old")

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize(("platform", "syncs"), [("linux", 2), ("win32", 1)])
def test_the_file_and_its_directory_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, syncs: int
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    atomic_write(tmp_path / "state.json", b"x", platform=platform)
    assert len(synced) == syncs  # the data, then (not on Windows) the rename


def test_a_halt_is_on_disk_before_halt_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    switch = KillSwitch(tmp_path / "halt.json")
    switch.halt("power cut rehearsal")
    assert len(synced) == 2  # a power cut right after would not lose it
    assert KillSwitch(tmp_path / "halt.json").halted
    assert [p.name for p in tmp_path.iterdir()] == ["halt.json"]  # no halt.tmp left behind
