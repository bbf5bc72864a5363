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
commit then covers every order that arrived in one wake-up. The WAL is
checkpointed (the one step that fsyncs) by a background thread on its own connection, never
inside an order's commit, where it would add milliseconds to that order.
"""

from __future__ import annotations

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

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS requests (
    uuid         TEXT PRIMARY KEY,
    action       TEXT NOT NULL,
    fingerprint  BLOB NOT NULL,
    tag          TEXT NOT NULL,
    request      BLOB NOT NULL,
    reply        BLOB,
    received_at  REAL NOT NULL,
    completed_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_received_at ON requests (received_at);
CREATE INDEX IF NOT EXISTS requests_unresolved ON requests (received_at) WHERE reply IS NULL;
"""
_COLUMNS: Final = "uuid, action, fingerprint, tag, request, reply, received_at, completed_at"
_PRUNE_BATCH: Final = 500
_CHECKPOINT_S: Final = 2.0


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
    ) -> None:
        self._clock = clock
        self._defer = defer
        self._in_transaction = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: explicit transactions only, each statement commits itself.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        self.path = path
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_every, args=(_CHECKPOINT_S,), daemon=True, name="journal-wal"
        )
        self._checkpointer.start()

    def get(self, uuid: str) -> JournalEntry | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM requests WHERE uuid = ?", (uuid,)
        ).fetchone()
        return None if row is None else JournalEntry(*row)

    def record_request(
        self, uuid: str, action: str, fingerprint: bytes, tag: str, request: bytes
    ) -> None:
        """Record a request about to be sent to the terminal."""
        self._write(
            "INSERT INTO requests (uuid, action, fingerprint, tag, request, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (uuid, action, fingerprint, tag, request, self._clock()),
        )

    def record_reply(self, uuid: str, reply: bytes) -> None:
        """Record the final reply of a request."""
        self._write(
            "UPDATE requests SET reply = ?, completed_at = ? WHERE uuid = ?",
            (reply, self._clock(), uuid),
        )

    def forget(self, uuid: str) -> None:
        """Drop a request that never reached the terminal, so its uuid may be used again."""
        self._write("DELETE FROM requests WHERE uuid = ? AND reply IS NULL", (uuid,))

    def unresolved(self) -> list[JournalEntry]:
        """Requests with no recorded outcome, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM requests WHERE reply IS NULL ORDER BY received_at"
        ).fetchall()
        return [JournalEntry(*row) for row in rows]

    def prune_batch(self, retention_s: float) -> int:
        """Delete up to one small batch of completed entries older than ``retention_s``, so
        that no transaction holds the writer for long; call again until it returns 0."""
        return self._write(
            "DELETE FROM requests WHERE uuid IN (SELECT uuid FROM requests "
            "WHERE received_at < ? AND reply IS NOT NULL LIMIT ?)",
            (self._clock() - retention_s, _PRUNE_BATCH),
        )

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM requests").fetchone()
        return int(count)

    def commit(self) -> None:
        """Commit the grouped writes (called by ``defer``; harmless when there are none)."""
        if not self._in_transaction:
            return
        self._in_transaction = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            # Nothing can be done for the orders in this group but to say it loudly.
            logger.critical("journal commit failed: {}", exc)

    def close(self) -> None:
        self.commit()
        self._stop.set()
        self._checkpointer.join()
        self._db.close()

    def _checkpoint_every(self, interval_s: float) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            while not self._stop.wait(interval_s):
                # PASSIVE: copies what it can without waiting for (or blocking) the writer.
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            logger.warning("journal checkpoint failed: {}", exc)
        finally:
            db.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        try:
            if self._defer is not None and not self._in_transaction:
                self._db.execute("BEGIN")
                self._in_transaction = True
                self._defer(self.commit)
            return self._db.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise JournalError(f"journal write failed: {exc}") from exc
