"""What the data directory knows of its journal, and the commands that look after it.

A journal that disappears or goes back in time is the one way the exactly-once guarantee
could quietly lapse (the terminal's history is then the second ledger, see ``ledger.py``).
So the directory keeps a small record of its journal, ``journal-state.json``: its id, how
many rows it had when last seen, and whether ``journal recover`` replaced it. At start the
gateway compares the journal it opens with that record and logs an ERROR naming what it
found when the journal is missing, another one, or behind.

``python -m gtw_server journal check`` reports on a journal (it may run beside a gateway);
``journal recover`` moves a damaged one aside and starts a new one (only with no gateway
running: it takes the data directory's lock).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from pathlib import Path
from typing import Final

import msgspec

from gtw_server.dirlock import HOLDER_FILE, LOCK_FILE, DataDirLock
from gtw_server.errors import GatewayError
from gtw_server.journal import Journal, damaged
from plumbing.files import atomic_write

__all__ = [
    "JOURNAL_FILE",
    "JournalState",
    "Survey",
    "check",
    "examine",
    "recover",
    "recovered_note",
    "survey",
]

JOURNAL_FILE: Final = "journal.sqlite3"
STATE_FILE: Final = "journal-state.json"
_SIDE_FILES: Final = ("-wal", "-shm")
_OWN: Final = frozenset({STATE_FILE, LOCK_FILE, HOLDER_FILE})  # not worth listing
# Files that only a gateway which ran here leaves (the journal's own, the kill switch's, the
# simulator's; and a written audit trail): with no record of a journal, they say one existed.
_LEFT_BY_A_GATEWAY: Final = frozenset(
    {f"{JOURNAL_FILE}-wal", f"{JOURNAL_FILE}-shm", "halt.json", "sim.sqlite3"}
)


class JournalState(msgspec.Struct, frozen=True, kw_only=True):
    """What the data directory last knew of its journal."""

    id: str
    rows: int  # the highest row id seen
    seen_at: float
    recovered_at: float | None = None
    moved_aside: list[str] = msgspec.field(default_factory=list)

    @classmethod
    def read(cls, data_dir: Path) -> JournalState | None:
        try:
            return msgspec.json.decode((data_dir / STATE_FILE).read_bytes(), type=cls)
        except (OSError, msgspec.DecodeError):
            return None

    def write(self, data_dir: Path) -> None:
        """Replace the record atomically (a torn record would read as "no journal before")."""
        atomic_write(data_dir / STATE_FILE, msgspec.json.encode(self))

    @classmethod
    def of(cls, journal: Journal) -> JournalState:
        """The journal as it is now (a recovery, once acknowledged, is forgotten)."""
        return cls(id=journal.id, rows=journal.last_row, seen_at=time.time())


class Survey(msgspec.Struct, frozen=True):
    """The data directory as it was before the journal was opened."""

    existed: bool  # the journal file
    files: list[str]  # every file, with its size
    used: bool  # files only a gateway that ran here leaves behind


def survey(data_dir: Path) -> Survey:
    """Look at the directory before anything in it is opened or created."""
    try:
        found = sorted(p for p in data_dir.iterdir() if p.is_file())
    except OSError:
        found = []
    names = {p.name for p in found}
    trail = any(_is_audit_trail(p) for p in found)
    return Survey(
        existed=JOURNAL_FILE in names,
        files=[f"{p.name} ({p.stat().st_size:,} bytes)" for p in found if p.name not in _OWN],
        used=trail or bool(names & _LEFT_BY_A_GATEWAY),
    )


def _is_audit_trail(path: Path) -> bool:
    """A gateway's audit trail with something in it (``audit.jsonl``, ``audit.<time>.jsonl``)."""
    return path.name.startswith("audit") and path.suffix == ".jsonl" and path.stat().st_size > 0


def examine(data_dir: Path, before: Survey, journal: Journal) -> str | None:
    """At start, after opening ``journal``: what is wrong with it compared with what the
    directory knew (``before``: the directory before it was opened), as a sentence for an
    ERROR line."""
    known = JournalState.read(data_dir)
    path = data_dir / JOURNAL_FILE
    found = ", ".join(before.files) or "nothing"
    if known is None:
        if before.existed or not before.used:
            return None  # a journal from before these records, or a new directory
        return (
            f"there was no journal at {path}, but this directory was used by a gateway before "
            f"(found: {found}): its journal is gone"
        )
    last_seen = _when(known.seen_at)
    if not before.existed:
        return (
            f"the journal {path} is missing, but this directory had one (id {known.id}, "
            f"{known.rows} row(s) at {last_seen}); found: {found}"
        )
    if journal.id != known.id:
        return (
            f"the journal {path} (id {journal.id}) is not the one this directory had (id "
            f"{known.id}, {known.rows} row(s) at {last_seen}): it was replaced"
        )
    if journal.last_row < known.rows:
        return (
            f"the journal {path} is behind: it ends at row {journal.last_row}, but held "
            f"{known.rows} at {last_seen}; its last commits are lost (a -wal file deleted "
            "after a crash, or a backup restored?)"
        )
    return None


def recovered_note(data_dir: Path) -> str | None:
    """The sentence to log at start when ``journal recover`` replaced the journal."""
    known = JournalState.read(data_dir)
    if known is None or known.recovered_at is None:
        return None
    return (
        f"the journal was started afresh by `journal recover` at {_when(known.recovered_at)}; "
        f"the damaged one was moved to {', '.join(known.moved_aside)}"
    )


def check(data_dir: Path) -> tuple[bool, list[str]]:
    """``journal check``: whether the journal is sound, and what to print about it."""
    path = data_dir / JOURNAL_FILE
    if not path.exists():
        known = JournalState.read(data_dir)
        had = f" (this directory had one: id {known.id})" if known else ""
        return False, [f"no journal at {path}{had}"]
    try:
        # Read-only, so that it can run beside a gateway; integrity_check reads everything.
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise damaged(path, "; ".join(problems))
            (entries, unresolved, last, oldest) = db.execute(
                "SELECT COUNT(*), COUNT(*) - COUNT(reply), COALESCE(MAX(id), 0), "
                "MIN(received_at) FROM journal"
            ).fetchone()
            row = db.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        error = exc if isinstance(exc, GatewayError) else damaged(path, str(exc))
        return False, [f"DAMAGED: {error}"]
    except GatewayError as exc:
        return False, [f"DAMAGED: {exc}"]
    lines = [
        f"journal {path}: sound (integrity_check ok)",
        f"  id {row[0] if row else '(none: written by an older version)'}",
        f"  {entries} entries, {unresolved} awaiting their outcome, last row {last}",
    ]
    if oldest is not None:
        lines.append(f"  oldest entry received {_when(oldest)}")
    known = JournalState.read(data_dir)
    if known is not None and row is not None and (row[0] != known.id or last < known.rows):
        lines.append(
            f"  WARNING: the directory knew journal {known.id} with {known.rows} row(s) at "
            f"{_when(known.seen_at)}"
        )
    return True, lines


def recover(data_dir: Path, *, force: bool = False) -> list[str]:
    """``journal recover``: move the journal aside and start a new one. Raises
    ``GatewayError`` (a gateway holds the directory; the journal is sound and ``force`` is
    off); returns what to print."""
    path = data_dir / JOURNAL_FILE
    if not path.exists():
        raise GatewayError(f"there is no journal at {path} to recover")
    lock = DataDirLock(data_dir)
    lock.acquire(command="journal recover")
    try:
        sound, _ = check(data_dir)
        if sound and not force:
            raise GatewayError(
                f"the journal {path} is sound: nothing to recover (--force starts a new one "
                "anyway, and forgets which orders it executed)"
            )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        aside = data_dir / f"journal-damaged-{stamp}.sqlite3"
        moved = []
        for suffix in ("", *_SIDE_FILES):
            source = path.with_name(path.name + suffix)
            if source.exists():
                target = aside.with_name(aside.name + suffix)  # -wal beside its database
                os.replace(source, target)
                moved.append(target.name)
        journal = Journal(path)
        try:
            JournalState(
                id=journal.id,
                rows=0,
                seen_at=time.time(),
                recovered_at=time.time(),
                moved_aside=moved,
            ).write(data_dir)
        finally:
            journal.close()
    finally:
        lock.release()
    return [
        f"moved the journal aside: {', '.join(moved)} (in {data_dir})",
        f"started a new journal {path} (id {journal.id})",
        "At its next start the gateway checks every order its journal does not know against "
        "the terminal's history ([gateway] history_lookback_hours, 24 by default) before it "
        "executes it: a retried order found there is answered from the history, not executed "
        "again. Keep the moved file for the record.",
    ]


def _when(epoch: float) -> str:
    return f"{dt.datetime.fromtimestamp(epoch, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
