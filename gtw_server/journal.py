"""The journal: what the gateway was asked to execute, and what came of it, keyed by uuid.

A request is recorded before its terminal call and its reply after, each in its own committed
transaction, so after a crash an entry with no reply marks an order whose fate must be looked
up in the terminal (reconciliation) before its uuid may be used again.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed
(the data is in the OS before ``commit`` returns); only a power cut can lose the last commits.
Readers never block the writer, so pruning and lookups do not stall order flow.

With ``defer`` (the event loop's ``call_soon``), writes are grouped: the first write of a
loop turn opens a transaction and schedules its commit, which runs before anything the turn
scheduled after it, in particular before the terminal call of an order journaled in it. One
commit then covers every order that arrived in one wake-up.

Rows are appended in arrival order (an integer key), so a commit rewrites the last pages of
the table rather than pages scattered by random uuids: about three pages an order.

Checkpoints (copying the WAL back into the database, with two fsyncs: milliseconds) run on a
thread of their own once ``checkpoint_commits`` commits have piled up, rather than inside an
order's commit, where SQLite's automatic checkpoint would put them. A thread alone lets the
WAL grow without bound under steady load: SQLite starts the log again only when every frame
in it has been copied back, and with orders committed during every checkpoint that never
happens. So once the thread finds more than ``wal_limit_frames`` in the log, it copies at
every look (each ``checkpoint_interval_s``), and the writer copies what is left (the frames
of the last look or so) itself, after its next commit. The log then starts again from its
beginning, and ``journal_size_limit`` trims the file back to that size. Each restart fsyncs
the new log's header inside the commit that starts it: counting commits keeps restarts rare
when orders are few.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from loguru import logger
from msgspec import Struct

from gtw_server.errors import JournalError

__all__ = ["Journal", "JournalEntry"]

_SCHEMA_VERSION: Final = 2
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS journal (
    id           INTEGER PRIMARY KEY,
    uuid         TEXT NOT NULL UNIQUE,
    action       TEXT NOT NULL,
    fingerprint  BLOB NOT NULL,
    tag          TEXT NOT NULL,
    request      BLOB NOT NULL,
    reply        BLOB,
    received_at  REAL NOT NULL,
    completed_at REAL
);
CREATE INDEX IF NOT EXISTS journal_unresolved ON journal (id) WHERE reply IS NULL;
"""
# Version 1 (the first) kept a WITHOUT ROWID table keyed by uuid; its rows move over as they are.
_MIGRATE_FROM_1: Final = """
INSERT INTO journal (uuid, action, fingerprint, tag, request, reply, received_at, completed_at)
    SELECT uuid, action, fingerprint, tag, request, reply, received_at, completed_at
    FROM requests ORDER BY received_at;
DROP TABLE requests;
"""
_COLUMNS: Final = "uuid, action, fingerprint, tag, request, reply, received_at, completed_at"
_PRUNE_BATCH: Final = 500
_FRAME_HEADER: Final = 24  # bytes before each page in the WAL


class JournalEntry(Struct, frozen=True):
    """One journaled OPEN or CLOSE. ``reply`` is ``None`` until the outcome is known."""

    uuid: str
    action: str
    fingerprint: bytes
    tag: str
    request: bytes
    reply: bytes | None
    received_at: float
    completed_at: float | None


class Journal:
    """The request journal in ``path`` (created if missing)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        defer: Callable[[Callable[[], None]], object] | None = None,
        checkpoint_interval_s: float = 0.05,
        checkpoint_commits: int = 128,
        wal_limit_frames: int = 4000,
    ) -> None:
        self._clock = clock
        self._defer = defer
        self._in_transaction = False
        # False after a failed commit, until one succeeds: the orders journaled in the failed
        # group must not run (their entries are gone).
        self.healthy = True
        self._commits = 0  # counted by the writer, read by the checkpointer
        self._wal_limit_frames = wal_limit_frames
        self._restart_wal = False  # the log is past its limit: the writer should finish a copy
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: explicit transactions only, each statement commits itself.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
            limit_bytes = wal_limit_frames * (page_size + _FRAME_HEADER)
            self._db.execute(f"PRAGMA journal_size_limit={limit_bytes}")
            self._create()
            # The checkpointer's own connection, opened here so that a failure is the caller's.
            self._checkpoint_db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        self.path = path
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_every,
            args=(checkpoint_interval_s, checkpoint_commits),
            daemon=True,
            name="journal-checkpoint",
        )
        self._checkpointer.start()

    def _create(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        old = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'"
        ).fetchone()
        self._db.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        if old is not None and version < _SCHEMA_VERSION:
            for statement in _MIGRATE_FROM_1.split(";"):
                if statement.strip():
                    self._db.execute(statement)
        self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self._db.execute("COMMIT")

    def get(self, uuid: str) -> JournalEntry | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM journal WHERE uuid = ?", (uuid,)).fetchone()
        return None if row is None else JournalEntry(*row)

    def record_request(
        self, uuid: str, action: str, fingerprint: bytes, tag: str, request: bytes
    ) -> None:
        """Record a request about to be sent to the terminal."""
        self._write(
            "INSERT INTO journal (uuid, action, fingerprint, tag, request, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (uuid, action, fingerprint, tag, request, self._clock()),
        )

    def record_reply(self, uuid: str, reply: bytes) -> None:
        """Record the final reply of a request."""
        self._write(
            "UPDATE journal SET reply = ?, completed_at = ? WHERE uuid = ?",
            (reply, self._clock(), uuid),
        )

    def forget(self, uuid: str) -> None:
        """Drop a request that never reached the terminal, so its uuid may be used again."""
        self._write("DELETE FROM journal WHERE uuid = ? AND reply IS NULL", (uuid,))

    def unresolved(self) -> list[JournalEntry]:
        """Requests with no recorded outcome, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM journal WHERE reply IS NULL ORDER BY id"
        ).fetchall()
        return [JournalEntry(*row) for row in rows]

    def prune_batch(self, retention_s: float) -> int:
        """Delete up to one small batch of completed entries older than ``retention_s``, so
        that no transaction holds the writer for long; call again until it returns 0."""
        return self._write(
            # Oldest first by arrival: the scan stops after a batch of matches.
            "DELETE FROM journal WHERE id IN (SELECT id FROM journal "
            "WHERE received_at < ? AND reply IS NOT NULL ORDER BY id LIMIT ?)",
            (self._clock() - retention_s, _PRUNE_BATCH),
        )

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM journal").fetchone()
        return int(count)

    def commit(self) -> None:
        """Commit the grouped writes (called by ``defer``; harmless when there are none)."""
        if not self._in_transaction:
            return
        self._in_transaction = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            # The group is lost: undo it, and let the executor refuse its orders (``healthy``)
            # rather than run orders that nothing would stop from running twice.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self.healthy = False
            logger.critical("journal commit failed, its orders are refused: {}", exc)
            return
        self.healthy = True
        self._committed()

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join()
        self._checkpoint_db.close()
        self.commit()
        self._db.close()  # the last connection to close checkpoints and removes the WAL

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        try:
            if self._defer is not None and not self._in_transaction:
                self._db.execute("BEGIN")
                self._in_transaction = True
                self._defer(self.commit)
            rowcount = self._db.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise JournalError(f"journal write failed: {exc}") from exc
        if not self._in_transaction:  # the statement committed itself
            self._committed()
        return rowcount

    def _committed(self) -> None:
        """Count a commit; past the WAL's limit, copy back what the checkpointer has not, so
        that the next write starts the log again."""
        self._commits += 1
        if not self._restart_wal:
            return
        try:
            busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            logger.warning("journal checkpoint failed: {}", exc)
            self._restart_wal = False  # the checkpointer asks again at its next look
            return
        # Busy (the checkpointer is copying too) or short: the next commit tries again.
        self._restart_wal = bool(busy) or copied < frames

    def _checkpoint_every(self, interval_s: float, commits: int) -> None:
        copied_at = 0  # the writer's commit count at the last copy
        failing = False
        while not self._stop.wait(interval_s):
            if self._commits - copied_at < commits and not self._restart_wal:
                continue
            copied_at = self._commits
            try:
                # PASSIVE: copies what it can without waiting for (or blocking) the writer.
                query = "PRAGMA wal_checkpoint(PASSIVE)"
                _, frames, _ = self._checkpoint_db.execute(query).fetchone()
            except sqlite3.Error as exc:
                if not failing:  # once per run of failures, not at every look
                    logger.error("journal checkpoint failed, the WAL grows meanwhile: {}", exc)
                failing = True
                continue
            if failing:
                logger.info("journal checkpoints succeeded again")
                failing = False
            if frames > self._wal_limit_frames:
                self._restart_wal = True
