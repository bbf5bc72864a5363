"""What the data directory knows of its journal: missing, replaced, behind, recovered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gtw_server.dirlock import DataDirLock
from gtw_server.errors import DataDirInUse, GatewayError
from gtw_server.journal import Journal
from gtw_server.journal_doctor import (
    JOURNAL_FILE,
    JournalState,
    check,
    examine,
    recover,
    recovered_note,
    survey,
)


def start(data: Path) -> tuple[str | None, Journal]:
    """What a gateway does at start: look, open, compare, remember."""
    before = survey(data)
    journal = Journal(data / JOURNAL_FILE)
    problem = examine(data, before, journal)
    JournalState.of(journal).write(data)
    return problem, journal


def fill(journal: Journal, count: int) -> None:
    for n in range(count):
        journal.record_request(f"u{n}", "OPEN", b"fp", f"#t{n}", b"{}")


def test_a_new_directory_and_a_reopened_journal_are_fine(tmp_path: Path) -> None:
    problem, journal = start(tmp_path)
    assert problem is None
    fill(journal, 3)
    JournalState.of(journal).write(tmp_path)
    journal.close()
    problem, journal = start(tmp_path)
    assert problem is None
    journal.close()


def test_a_missing_journal_is_named_with_what_was_found(tmp_path: Path) -> None:
    _, journal = start(tmp_path)
    fill(journal, 3)
    JournalState.of(journal).write(tmp_path)
    journal.close()
    (tmp_path / "sim.sqlite3").write_bytes(b"x" * 10)
    (tmp_path / JOURNAL_FILE).unlink()
    problem, journal = start(tmp_path)
    journal.close()
    assert problem is not None
    assert "is missing, but this directory had one" in problem and "3 row(s)" in problem
    assert "sim.sqlite3 (10 bytes)" in problem and JOURNAL_FILE not in problem.split("found")[1]


def test_a_replaced_or_shortened_journal_is_named(tmp_path: Path) -> None:
    _, journal = start(tmp_path)
    fill(journal, 5)
    JournalState.of(journal).write(tmp_path)
    journal.close()
    shutil.copy(tmp_path / JOURNAL_FILE, tmp_path / "copy.sqlite3")

    other = Journal(tmp_path / "other.sqlite3")
    other.close()
    shutil.copy(tmp_path / "other.sqlite3", tmp_path / JOURNAL_FILE)
    problem, journal = start(tmp_path)
    journal.close()
    assert problem is not None and "is not the one this directory had" in problem

    # The original back, but the directory saw it with more rows: commits are lost.
    shutil.copy(tmp_path / "copy.sqlite3", tmp_path / JOURNAL_FILE)
    original = Journal(tmp_path / "copy.sqlite3")
    JournalState(id=original.id, rows=9, seen_at=0).write(tmp_path)
    original.close()
    problem, journal = start(tmp_path)
    journal.close()
    assert problem is not None and "is behind: it ends at row 5, but held 9" in problem


def test_a_directory_a_gateway_used_before_these_records(tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite3-wal").write_bytes(b"")  # what an old gateway left
    problem, journal = start(tmp_path)
    journal.close()
    assert problem is not None and "used by a gateway before" in problem


def test_recover_moves_a_damaged_journal_aside_and_says_so_at_the_next_start(
    tmp_path: Path,
) -> None:
    _, journal = start(tmp_path)
    fill(journal, 50)
    journal.close()
    with pytest.raises(GatewayError, match="is sound: nothing to recover"):
        recover(tmp_path)
    with (tmp_path / JOURNAL_FILE).open("r+b") as file:
        file.seek(4096)
        file.write(b"\xff" * 4096)
    sound, lines = check(tmp_path)
    assert not sound and "DAMAGED" in lines[0] and "journal recover" in lines[0]

    lock = DataDirLock(tmp_path)
    lock.acquire()
    try:
        with pytest.raises(DataDirInUse):  # never beside a gateway
            recover(tmp_path)
    finally:
        lock.release()
    said = recover(tmp_path)
    [aside] = tmp_path.glob("journal-damaged-*.sqlite3")
    assert aside.name in said[0]
    assert check(tmp_path)[0]
    note = recovered_note(tmp_path)
    assert note is not None and aside.name in note
    problem, journal = start(tmp_path)  # the new one is this directory's journal now
    journal.close()
    assert problem is None and recovered_note(tmp_path) is None
