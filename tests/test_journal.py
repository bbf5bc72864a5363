"""The request journal: records, outcomes, restarts and pruning."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import pytest
from support import LockHolder

from gtw_server.errors import JournalDamaged, JournalUnavailable
from gtw_server.executor import OrderExecutor
from gtw_server.journal import Journal
from gtw_server.ledger import HistoryLedger
from gtw_server.replies import ok
from protocol import ErrorCode, Open, Side, Status, encode

OpenJournal = Callable[..., Journal]


@pytest.fixture
def open_journal() -> Iterator[OpenJournal]:
    """``Journal(...)``, each closed after the test (so no checkpoint thread outlives it)."""
    opened: list[Journal] = []

    def _open(*args: Any, **kwargs: Any) -> Journal:
        opened.append(Journal(*args, **kwargs))
        return opened[-1]

    yield _open
    for journal in opened:
        journal.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_request_then_reply(tmp_path: Path, open_journal: OpenJournal) -> None:
    journal = open_journal(tmp_path / "j.sqlite3")
    journal.record_request("u1", "OPEN", b"fp", "#tag", b"{}")
    entry = journal.get("u1")
    assert entry is not None and entry.reply is None
    assert [e.uuid for e in journal.unresolved()] == ["u1"]

    journal.record_reply("u1", b'{"status":"FILLED"}')
    entry = journal.get("u1")
    assert entry is not None and entry.reply == b'{"status":"FILLED"}'
    assert entry.completed_at is not None
    assert journal.unresolved() == []
    assert journal.get("absent") is None


def test_survives_reopening_and_uses_wal(tmp_path: Path, open_journal: OpenJournal) -> None:
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path)
    journal.record_request("u1", "CLOSE", b"fp", "#tag", b"{}")
    journal.close()
    reopened = open_journal(path)
    assert reopened.get("u1") is not None
    (mode,) = reopened._db.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_forget_only_drops_unresolved(tmp_path: Path, open_journal: OpenJournal) -> None:
    journal = open_journal(tmp_path / "j.sqlite3")
    journal.record_request("open", "OPEN", b"fp", "#a", b"{}")
    journal.record_request("done", "OPEN", b"fp", "#b", b"{}")
    journal.record_reply("done", b"{}")
    journal.forget("open")
    journal.forget("done")
    assert journal.get("open") is None
    assert journal.get("done") is not None


def test_prune_keeps_recent_and_unresolved(tmp_path: Path, open_journal: OpenJournal) -> None:
    clock = Clock()
    journal = open_journal(tmp_path / "j.sqlite3", clock=clock)
    for i in range(1200):  # more than one prune batch
        journal.record_request(f"old-{i}", "OPEN", b"fp", "#t", b"{}")
        journal.record_reply(f"old-{i}", b"{}")
    journal.record_request("old-unresolved", "OPEN", b"fp", "#t", b"{}")
    clock.now += 8 * 86400
    journal.record_request("new", "OPEN", b"fp", "#t", b"{}")
    journal.record_reply("new", b"{}")

    batches = []
    while batch := journal.prune_batch(7 * 86400):
        batches.append(batch)
    assert sum(batches) == 1200 and len(batches) > 1  # in several small transactions
    assert journal.get("new") is not None
    assert journal.get("old-unresolved") is not None  # never dropped before reconciliation
    assert len(journal) == 2


def test_a_known_uuid_is_answered_with_its_entry_and_not_written_again(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    journal = open_journal(tmp_path / "j.sqlite3")
    assert journal.record_request("u1", "OPEN", b"fp", "#t", b"{}") is None  # new: written
    known = journal.record_request("u1", "CLOSE", b"other", "#x", b"[]")
    assert known is not None and (known.action, known.fingerprint) == ("OPEN", b"fp")
    journal.record_reply("u1", b"{}")
    known = journal.record_request("u1", "OPEN", b"fp", "#t", b"{}")
    assert known is not None and known.reply == b"{}"
    assert len(journal) == 1


def test_grouped_writes_commit_once_when_deferred(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    deferred: list[Callable[[], None]] = []
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path, defer=deferred.append)
    journal.record_request("u1", "OPEN", b"fp", "#t", b"{}")
    journal.record_request("u2", "OPEN", b"fp", "#t", b"{}")
    journal.record_reply("u1", b"{}")
    assert len(deferred) == 1  # one commit for the whole group
    assert journal.get("u1") is not None  # the writer sees its own writes meanwhile
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM journal").fetchone() == (0,)
    deferred.pop()()
    assert other.execute("SELECT COUNT(*) FROM journal").fetchone() == (2,)
    journal.forget("u2")
    assert len(deferred) == 1  # the next write opened the next group
    journal.close()  # commits what is pending
    assert other.execute("SELECT uuid FROM journal").fetchall() == [("u1",)]


def test_a_reply_recorded_later_is_answered_at_once_and_written_at_the_flush(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    deferred: list[Callable[[], None]] = []
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path, defer=deferred.append)
    for uuid in ("sent-1", "sent-2"):
        journal.record_request(uuid, "OPEN", b"fp", "#t", b"{}")
    deferred.pop()()
    journal.record_reply_later("sent-1", b'{"status":"FILLED"}')
    assert not deferred  # nothing begun: no write, no commit on the reply's way
    entry = journal.get("sent-1")
    assert entry is not None and entry.reply == b'{"status":"FILLED"}'  # a retry's answer
    assert [e.uuid for e in journal.unresolved()] == ["sent-2"]  # not reconciled meanwhile
    assert journal.unsettled == 0  # not a reply the journal failed to write
    other = sqlite3.connect(path)
    assert written_reply(other, "sent-1") is None

    journal.record_request("next", "OPEN", b"fp", "#n", b"{}")  # a group open: flush joins it
    journal.flush()
    deferred.pop()()
    assert journal.unsettled == 0
    assert written_reply(other, "sent-1") == b'{"status":"FILLED"}'


def test_a_reply_recorded_later_and_lost_in_a_crash_is_left_to_reconciliation(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path)
    journal.record_request("sent", "OPEN", b"fp", "#t", b"{}")
    journal.record_reply_later("sent", b'{"status":"FILLED"}')
    crashed = sqlite3.connect(path)  # what a restart reads, the process gone before a flush:
    unresolved = "SELECT uuid FROM journal WHERE reply IS NULL"  # reconciled at start
    assert crashed.execute(unresolved).fetchall() == [("sent",)]
    journal.close()  # a clean stop writes it
    assert written_reply(crashed, "sent") == b'{"status":"FILLED"}'


def written_reply(db: sqlite3.Connection, uuid: str) -> bytes | None:
    """The reply another connection reads for ``uuid``: what a restart would find."""
    ((reply,),) = db.execute("SELECT reply FROM journal WHERE uuid = ?", (uuid,)).fetchall()
    return reply  # type: ignore[no-any-return]


def test_a_version_1_journal_is_migrated_with_its_entries(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    path = tmp_path / "j.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE requests (uuid TEXT PRIMARY KEY, action TEXT NOT NULL, fingerprint BLOB "
        "NOT NULL, tag TEXT NOT NULL, request BLOB NOT NULL, reply BLOB, received_at REAL NOT "
        "NULL, completed_at REAL) WITHOUT ROWID;"
        "INSERT INTO requests VALUES ('done', 'OPEN', x'01', '#t', x'7b7d', x'7b7d', 1.0, 2.0);"
        "INSERT INTO requests VALUES ('open', 'OPEN', x'01', '#t', x'7b7d', NULL, 3.0, NULL);"
    )
    old.close()
    journal = open_journal(path)
    done = journal.get("done")
    assert done is not None and done.reply == b"{}"
    assert [e.uuid for e in journal.unresolved()] == ["open"]
    journal.close()
    assert open_journal(path).get("open") is not None  # and a second opening changes nothing


def test_the_wal_starts_again_under_steady_writes(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    # Without the writer's own checkpoint at the limit, these 10,000 commits of ~3 frames
    # each would leave a WAL of over 100 MB: the checkpointer alone never copies it all.
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path, checkpoint_interval_s=0.005, wal_limit_frames=500)
    wal = path.with_name(path.name + "-wal")
    largest = 0
    for n in range(5000):
        journal.record_request(f"u{n}", "OPEN", b"f" * 32, "#tag", b"x" * 300)
        journal.record_reply(f"u{n}", b"y" * 300)
        largest = max(largest, wal.stat().st_size)
    assert largest < 16 * 1024 * 1024
    assert len(journal) == 5000


def test_the_wal_starts_again_under_grouped_writes(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    # As the gateway writes: a transaction per event-loop turn, with several orders in it.
    deferred: list[Callable[[], None]] = []
    path = tmp_path / "j.sqlite3"
    journal = open_journal(
        path, defer=deferred.append, checkpoint_interval_s=0.005, wal_limit_frames=500
    )
    wal = path.with_name(path.name + "-wal")
    largest = 0
    for turn in range(3000):
        for n in range(turn * 4, turn * 4 + 4):
            journal.record_request(f"u{n}", "OPEN", b"f" * 32, "#tag", b"x" * 300)
            if n >= 4:
                journal.record_reply(f"u{n - 4}", b"y" * 300)
        deferred.pop()()
        largest = max(largest, wal.stat().st_size)
    assert largest < 16 * 1024 * 1024
    assert len(journal) == 12_000 and len(journal.unresolved()) == 4


def test_a_light_load_does_not_restart_the_log_at_every_commit(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    # Every restart of the log fsyncs its header inside a commit: with few orders, copying
    # after each would put that fsync into nearly every order.
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path, checkpoint_interval_s=0.002, checkpoint_commits=100)
    wal = path.with_name(path.name + "-wal")
    sizes = []
    for n in range(40):  # 80 commits, a few milliseconds apart
        journal.record_request(f"u{n}", "OPEN", b"f" * 32, "#tag", b"x" * 300)
        journal.record_reply(f"u{n}", b"y" * 300)
        sizes.append(wal.stat().st_size)
        time.sleep(0.003)  # the checkpoint thread's interval passes: the scenario
    # Each order appended to the log; a log started again is written over, not grown.
    assert all(a < b for a, b in pairwise(sizes))


def test_checkpoints_run_on_a_thread_stopped_by_close(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path, checkpoint_interval_s=0.01)
    threads = [t for t in threading.enumerate() if t.name == "journal-checkpoint"]
    assert threads and all(t.is_alive() for t in threads)
    journal.record_request("u1", "OPEN", b"fp", "#t", b"{}")
    journal.close()
    assert not any(t.is_alive() for t in threads)
    assert not path.with_name(path.name + "-wal").exists()  # copied back and removed
    assert open_journal(path).get("u1") is not None


class FailingCommit:
    """The journal's connection, with every COMMIT failing as on a full disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)


async def test_a_failed_commit_undoes_its_group_and_its_orders_are_refused(
    tmp_path: Path, open_journal: OpenJournal
) -> None:
    deferred: list[Callable[[], None]] = []
    journal = open_journal(tmp_path / "j.sqlite3", defer=deferred.append)
    real = journal._db
    journal._db = FailingCommit(real)  # type: ignore[assignment]
    journal.record_request("u1", "OPEN", b"fp", "#t", b"{}")
    deferred.pop()()
    journal._db = real
    assert journal.get("u1") is None  # undone: the uuid is free for a retry

    class NoTerminal:
        async def call(self, *args: object, **kwargs: object) -> object:
            raise AssertionError("an order of a failed group reached the terminal")

    executor = OrderExecutor(
        journal,
        NoTerminal(),  # type: ignore[arg-type]
        secret=None,
        signature_ttl_ms=5000,
        ledger=HistoryLedger(86_400),
    )
    order = Open(uuid="u1", timestamp=0, symbol="EURUSD", type=Side.BUY, volume=0.1)
    reply = await executor.execute(order)
    assert (reply.status, reply.error_code) == (Status.REJECTED, ErrorCode.JOURNAL_UNAVAILABLE)
    assert "nothing was executed" in (reply.error_msg or "")
    assert not journal.lost("u1")  # asked once

    await asyncio.sleep(0.06)  # past retry_after_s: new requests are tried again
    journal.record_request("u2", "OPEN", b"fp", "#t", b"{}")
    deferred.pop()()
    assert journal.get("u2") is not None  # and it recovers


def test_a_lock_held_elsewhere_refuses_requests_at_once_and_keeps_replies(
    tmp_path: Path, open_journal: OpenJournal, lock_holders: list[LockHolder]
) -> None:
    path = tmp_path / "j.sqlite3"
    deferred: list[Callable[[], None]] = []
    journal = open_journal(path, defer=deferred.append)
    journal.record_request("in-flight", "OPEN", b"fp", "#a", b"{}")
    deferred.pop()()
    lock_holders.append(holder := LockHolder.sqlite(path))

    started = time.monotonic()
    for n in range(50):
        with pytest.raises(JournalUnavailable, match="locked"):
            journal.record_request(f"new-{n}", "OPEN", b"fp", "#b", b"{}")
    assert time.monotonic() - started < 2.0  # not 50 x SQLite's 5 s busy timeout
    journal.record_reply("in-flight", b'{"status":"FILLED"}')  # never raises for the lock
    entry = journal.get("in-flight")
    assert entry is not None and entry.reply == b'{"status":"FILLED"}'  # answered from memory
    assert journal.unresolved() == [] and journal.unsettled == 1
    assert not deferred  # nothing was begun
    assert journal.flush() == 1  # still locked

    holder.release()
    time.sleep(0.06)  # past retry_after_s
    journal.flush()
    deferred.pop()()
    assert journal.unsettled == 0
    other = sqlite3.connect(path)
    assert other.execute("SELECT reply FROM journal WHERE uuid = 'in-flight'").fetchone() == (
        b'{"status":"FILLED"}',
    )


async def test_a_known_uuid_is_answered_from_the_journal_while_another_holds_its_lock(
    tmp_path: Path, open_journal: OpenJournal, lock_holders: list[LockHolder]
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = open_journal(path, defer=asyncio.get_running_loop().call_soon)
    executor = OrderExecutor(
        journal,
        cast(Any, None),  # nothing reaches the terminal here
        secret=None,
        signature_ttl_ms=5000,
        ledger=HistoryLedger(86_400),
    )
    filled, flying = (
        Open(uuid=u, timestamp=0, symbol="EURUSD", type=Side.BUY, volume=0.1)
        for u in ("filled", "flying")
    )
    assert executor.admit(filled) is None and executor.admit(flying) is None
    journal.record_reply("filled", encode(ok(filled, ticket=7)))
    await asyncio.sleep(0)  # the group's commit
    lock_holders.append(LockHolder.sqlite(path))  # a backup tool, an sqlite3 shell

    again = executor.admit(filled)  # a retry: nothing can be written, but reads work
    assert again is not None and again.duplicate and again.ticket == 7
    pending_reply = executor.admit(flying)
    assert pending_reply is not None and pending_reply.status is Status.PENDING
    new = executor.admit(Open(uuid="new", timestamp=0, symbol="EURUSD", type=Side.BUY, volume=1))
    assert new is not None and new.error_code == ErrorCode.JOURNAL_UNAVAILABLE  # only a new one


def test_a_settle_kept_in_memory_goes_with_the_next_group(
    tmp_path: Path, open_journal: OpenJournal, lock_holders: list[LockHolder]
) -> None:
    path = tmp_path / "j.sqlite3"
    deferred: list[Callable[[], None]] = []
    journal = open_journal(path, defer=deferred.append, retry_after_s=0.0)
    journal.record_request("freed", "OPEN", b"fp", "#a", b"{}")
    deferred.pop()()
    lock_holders.append(holder := LockHolder.sqlite(path))
    journal.forget("freed")  # kept in memory: the uuid is free already
    assert journal.get("freed") is None and journal.unresolved() == []
    holder.release()
    journal.record_request("freed", "OPEN", b"fp", "#a", b"{}")  # its retry: no UNIQUE clash
    journal.record_request("next", "OPEN", b"fp", "#c", b"{}")
    deferred.pop()()
    assert journal.unsettled == 0
    assert [e.uuid for e in journal.unresolved()] == ["freed", "next"]


def scribble(path: Path, offset: int, length: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(bytes(range(256)) * (length // 256 + 1))


@pytest.mark.parametrize(
    "harm",
    [
        pytest.param(lambda p: scribble(p, 4096, 8192), id="scribbled pages"),
        pytest.param(lambda p: os.truncate(p, p.stat().st_size // 3), id="truncated"),
        pytest.param(lambda p: scribble(p, 0, 100), id="scribbled header"),
    ],
)
def test_a_damaged_journal_is_refused_at_open_naming_the_fix(
    tmp_path: Path, harm: Callable[[Path], None]
) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    for n in range(400):
        journal.record_request(f"u{n}", "OPEN", b"fp" * 16, "#t", b"{}" * 100)
    journal.close()
    harm(path)
    with pytest.raises(JournalDamaged) as excinfo:
        Journal(path).close()
    message = str(excinfo.value)
    assert str(path) in message
    assert f"python -m gtw_server journal recover --data-dir {tmp_path}" in message


def test_each_journal_has_its_own_id(tmp_path: Path) -> None:
    first = Journal(tmp_path / "a.sqlite3")
    first_id = first.id
    first.close()
    again = Journal(tmp_path / "a.sqlite3")
    other = Journal(tmp_path / "b.sqlite3")
    assert again.id == first_id != other.id and len(first_id) == 16
    again.close()
    other.close()
