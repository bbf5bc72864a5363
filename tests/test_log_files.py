"""Rotated files (the audit trail, the gateway's log) while an operator reads them.

On Windows, ``Get-Content -Wait`` holds the file open without sharing delete access, so
renaming or deleting it fails with PermissionError; these tests make every rename fail that
way, inject the platform, and check that no line is lost and that the files stay within
their age and size bounds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from gtw_server.config import load_config
from gtw_server.errors import ConfigError
from gtw_server.log import configure_logging
from gtw_server.testing import GatewayProcess
from inf_bridge import Bridge
from plumbing.audit import AuditFile, add_audit_file, record, write_later
from plumbing.rotation import closed_files, prune
from protocol import AuditEvent


@pytest.fixture
def held_open(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every rename fails as it does on Windows while someone tails the file; the attempts."""
    attempts: list[str] = []

    def refuse(source: object, target: object) -> None:
        attempts.append(str(source))
        raise PermissionError(32, "The process cannot access the file", str(source))

    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(os, "rename", refuse)
    return attempts


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    logger.remove()  # configure_logging took over loguru; give pytest its stderr back
    logger.add(sys.stderr)


def lines_of(files: list[Path]) -> list[str]:
    return [line for f in sorted(files) for line in f.read_text(encoding="utf-8").splitlines()]


def trail(path: Path, platform: str, *, retention_bytes: int | None = None) -> AuditFile:
    """Rotated at 1000 bytes (about ten lines of ``write_numbered``), kept a day."""
    return AuditFile(
        path,
        source=None,
        rotation_bytes=1000,
        retention_s=86_400,
        retention_bytes=retention_bytes,
        platform=platform,
    )


def write_numbered(audit: AuditFile, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        audit.write(json.dumps({"n": n, "padding": "x" * 80}).encode())


def numbers(files: list[Path]) -> list[int]:
    """The ``n`` of each line, files in time order (their names sort so)."""
    return [json.loads(line)["n"] for line in lines_of(files)]


# -- the audit trail --------------------------------------------------------------------------


def test_on_windows_audit_files_are_named_by_start_time_and_never_renamed(
    tmp_path: Path, held_open: list[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    audit = trail(path, "win32")
    first = audit.current
    write_numbered(audit, 40)  # about 100 bytes a line, rotated at 1000: several files
    audit.close()
    assert held_open == []
    assert first != path and first.name.startswith("audit.") and first.exists()
    assert not path.exists()
    files = list(tmp_path.iterdir())
    assert len(files) >= 4
    assert numbers(files) == list(range(40))


def test_on_posix_the_current_file_keeps_its_name(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = trail(path, "linux")
    write_numbered(audit, 40)
    assert audit.current == path  # what tail -F follows
    audit.close()
    rotated = closed_files(path, current=True)
    assert len(rotated) >= 3
    assert numbers([*rotated]) + numbers([path]) == list(range(40))


def test_a_rename_refused_leaves_the_file_in_place_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_open: list[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    audit = trail(path, "linux")  # a platform that renames, on a file someone holds open
    write_numbered(audit, 40)
    audit.close()
    assert held_open == [str(path)]  # tried once, then named files by their start time
    assert numbers([path]) == list(range(10))  # the full file, closed where it was
    assert numbers(closed_files(path, current=True)) == list(range(10, 40))


def test_a_new_run_on_windows_starts_a_new_file_and_prunes_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    (old,) = files_of_ages(tmp_path, [(100, 2 * 86_400)])
    recent = trail(path, "win32")
    recent.close()
    again = trail(path, "win32")
    again.close()
    assert not old.exists()  # older than the day kept
    assert recent.current != again.current
    assert recent.current.exists() and again.current.exists()


def test_audit_files_are_kept_within_their_total_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = trail(path, "linux", retention_bytes=2500)
    write_numbered(audit, 100)  # about 10 000 bytes: ten rotated files without the bound
    audit.close()
    rotated = closed_files(path, current=True)
    assert sum(f.stat().st_size for f in rotated) <= 2500
    assert len(rotated) == 2
    kept = numbers(rotated) + numbers([path])
    assert kept == list(range(100 - len(kept), 100))  # the newest lines, oldest files gone


# -- pruning ----------------------------------------------------------------------------------


def files_of_ages(folder: Path, sizes_and_ages: list[tuple[int, float]]) -> list[Path]:
    now = time.time()
    made = []
    for n, (size, age_s) in enumerate(sizes_and_ages):
        file = folder / f"audit.{n}.jsonl"
        file.write_bytes(b"x" * size)
        os.utime(file, (now - age_s,) * 2)
        made.append(file)
    return made


def test_prune_deletes_by_age_then_oldest_first_by_size(tmp_path: Path) -> None:
    day = 86_400.0
    a, b, c, d, e = files_of_ages(
        tmp_path, [(100, 10 * day), (300, 3 * day), (300, 2 * day), (300, day), (300, 60)]
    )
    prune([a, b, c, d, e], max_age_s=7 * day, max_bytes=700)
    assert [f.exists() for f in (a, b, c, d, e)] == [False, False, False, True, True]
    prune([d, e], max_age_s=7 * day, max_bytes=None)
    assert d.exists() and e.exists()


def test_prune_skips_a_file_it_cannot_delete_and_deletes_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = files_of_ages(tmp_path, [(300, 300), (300, 200), (300, 100)])
    unlink = Path.unlink

    def held(self: Path, missing_ok: bool = False) -> None:
        if self == a:  # on Windows: someone reads it
            raise PermissionError(32, "The process cannot access the file", str(self))
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", held)
    prune([a, b, c], max_age_s=86_400, max_bytes=600)
    assert a.exists() and not b.exists() and c.exists()


# -- the gateway's log ------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_logging")
def test_on_windows_the_log_rotates_while_someone_tails_it(
    tmp_path: Path, held_open: list[str]
) -> None:
    path = tmp_path / "gateway.log"
    configure_logging("INFO", file=path, rotation="1 KB", console=False, platform="win32")
    for n in range(40):
        logger.info("line {} {}", n, "x" * 60)
    logger.remove()  # closes the file
    assert held_open == []
    assert not path.exists()
    files = closed_files(path, current=True)
    assert len(files) >= 3
    assert [line.rsplit("line ", 1)[1].split()[0] for line in lines_of(files)] == [
        str(n) for n in range(40)
    ]


@pytest.mark.usefixtures("restore_logging")
def test_on_posix_the_log_keeps_its_name_and_its_total_size(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    configure_logging(
        "INFO", file=path, rotation="1 KB", retention_size="3 KB", console=False, platform="linux"
    )
    for n in range(200):
        logger.info("line {} {}", n, "x" * 60)
    logger.remove()
    rotated = closed_files(path, current=True)
    assert path.exists()  # what tail -F follows
    assert 2 <= len(rotated) <= 3
    assert sum(f.stat().st_size for f in rotated) <= 3 * 1024
    assert "line 199 " in path.read_text(encoding="utf-8")


@pytest.mark.usefixtures("restore_logging")
def test_logs_left_by_earlier_runs_are_pruned_at_start(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    old, recent = files_of_ages(tmp_path, [(100, 40 * 86_400), (100, 60)])
    old = old.rename(tmp_path / "gateway.2020-01-01_00-00-00_000000.log")
    recent = recent.rename(tmp_path / "gateway.2020-02-01_00-00-00_000000.log")
    configure_logging("INFO", file=path, console=False, platform="win32")
    logger.remove()
    assert not old.exists() and recent.exists()


def test_retention_sizes_are_checked_at_load() -> None:
    env = {"MT5_BRIDGE_SECRET": "s3cret-s3cret-s3cret"}
    for key in ("log_retention_size", "audit_retention_size"):
        with pytest.raises(ConfigError, match=rf"\[gateway\] {key} 'lots'"):
            load_config(env=env, overrides={key: "lots"})
    gateway = load_config(env=env, overrides={"audit_retention_size": "2 GB"}).gateway
    assert (gateway.audit_retention_size, gateway.log_retention_size) == ("2 GB", "1 GB")


async def test_the_gateway_keeps_its_audit_files_within_their_size(
    tmp_path: Path, secret: str
) -> None:
    limits = {"audit_rotation": "1 KB", "audit_retention_size": "2 KB"}
    with GatewayProcess(tmp_path / "gw", secret=secret, gateway=limits) as gateway:
        async with Bridge(gateway.endpoint, secret=secret) as bridge:
            for _ in range(10):  # two lines of about 300 bytes each: six KB in all
                fill = await bridge.send_order("EURUSD", "BUY", 0.1)
                await bridge.close_position(fill.ticket)
    rotated = closed_files(tmp_path / "gw" / "audit.jsonl", current=True)
    assert rotated
    assert sum(f.stat().st_size for f in rotated) <= 2 * 1024


def test_a_record_kept_for_later_is_written_before_any_written_now(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = add_audit_file(path, source="gateway")
    try:
        record(AuditEvent.ORDER_RECEIVED, "OPEN", source="gateway", uuid="a", later=True)
        record(AuditEvent.MT5_FILLED, "OPEN", source="gateway", uuid="a", later=True)
        assert path.read_text() == ""  # kept
        time.sleep(0.01)
        # Written now by someone else (the kill switch, a chore): the kept ones go first.
        record(AuditEvent.HALTED, "by hand", source="gateway")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [line["event"] for line in lines] == ["ORDER_RECEIVED", "MT5_FILLED", "HALTED"]
        assert lines[0]["time"] <= lines[1]["time"] < lines[2]["time"]  # when each happened
        record(AuditEvent.RESUMED, "later", source="gateway", later=True)
        write_later()
        assert json.loads(path.read_text().splitlines()[-1])["event"] == "RESUMED"
    finally:
        trail.close()


def test_a_record_kept_for_later_is_logged_as_its_callers(tmp_path: Path) -> None:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append("{name}:{function}".format(**m.record)), level="INFO")
    try:
        record(AuditEvent.MT5_FILLED, "OPEN", source="gateway", uuid="c", later=True)
        write_later()
    finally:
        logger.remove(sink)
    assert seen == [f"{__name__}:test_a_record_kept_for_later_is_logged_as_its_callers"]


def test_a_kept_record_that_fails_stops_neither_the_others_nor_the_one_written_now(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    trail = add_audit_file(path, source="gateway")
    try:
        record(AuditEvent.ORDER_RECEIVED, "OPEN", source="gateway", uuid="ok-1", later=True)
        record(AuditEvent.MT5_FILLED, "OPEN", source="gateway", uuid="bad", later=True, x=object())
        record(AuditEvent.MT5_FILLED, "OPEN", source="gateway", uuid="ok-1", later=True)
        record(AuditEvent.HALTED, "by hand", source="gateway")  # the kill switch, say
    finally:
        trail.close()
    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert events == ["ORDER_RECEIVED", "MT5_FILLED", "HALTED"]  # the bad one said, and dropped


def test_an_audit_file_whose_next_file_could_not_be_opened_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    audit_file = AuditFile(path, source=None, rotation_bytes=200, retention_s=3600)
    opened = audit_file._open_next

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_file, "_open_next", full)
    with pytest.raises(OSError):
        audit_file.write(b"x" * 250)  # past the size: rotated, and the next file fails
    monkeypatch.setattr(audit_file, "_open_next", opened)  # space again
    audit_file.write(b'{"event":"after"}')  # was: "I/O operation on closed file", for good
    audit_file.close()
    assert path.read_text() == '{"event":"after"}\n'
