"""The journal: what the gateway was asked to execute, and what came of it, keyed by uuid.

A request is recorded before its terminal call and its reply after, each in its own committed
transaction, so after a crash an entry with no reply marks an order whose fate must be looked
up in the terminal (reconciliation) before its uuid may be used again.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed
(the data is in the OS before ``commit`` returns); only a power cut can lose the last commits.
Readers never block the writer, so pruning and lookups do not stall order flow.

The event loop never waits on the journal. Another process holding the file's write lock (a
backup tool, an ``sqlite3`` shell) would otherwise stall every write for SQLite's busy
timeout: here a write waits at most ``busy_timeout_ms``, then raises ``JournalUnavailable``
(the order is refused, never run unjournaled), and for ``retry_after_s`` after that new
requests are refused without waiting at all. What settles an entry (a reply, a ``forget``) is
never lost that way: a settle that cannot be written, or whose commit failed, is kept in
memory, answered from there (``get``), and written by ``flush`` or with the next group.

A fill already sent is journaled a little later (``record_reply_later``): answered from
memory at once, written by the next ``flush``, which the gateway runs once the terminal has
the next call (while the loop would only wait) or a few milliseconds later. (A terminal's
refusal is written at once: it leaves no trace in the terminal to reconcile from.) Until then its
entry is open, as if the gateway had crashed before writing it: a crash then is settled by
reconciliation with the same result, and nothing is lost. It takes the verdict's write and
commit off the time between an order's reply and the strategy's next order.

At open, ``PRAGMA quick_check`` reads every page: a damaged file raises ``JournalDamaged``,
naming the file and the command that moves it aside, before anything else starts. Each
journal has a random ``id``, so a file swapped for another can be told from the original.

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
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec
from loguru import logger
from msgspec import Struct

from gtw_server.errors import JournalDamaged, JournalError, JournalUnavailable

__all__ = ["Journal", "JournalEntry", "damaged"]

_SCHEMA_VERSION: Final = 3
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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
_OPEN_BUSY_S: Final = 5.0  # at open, nothing is waiting on the journal yet
_FORGET: Final = None  # a pending settle that drops the entry rather than answering it
_NOT_IN_GROUP: Final = b"\x00not in the group"


def damaged(path: Path, detail: str) -> JournalDamaged:
    """The error for a journal file SQLite cannot read, saying how to get past it."""
    return JournalDamaged(
        f"the journal {path} is damaged ({detail}). Move it aside and start a new one with: "
        f"python -m gtw_server journal recover --data-dir {path.parent} "
        "(orders are then checked against the terminal's history before any executes)"
    )


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
        busy_timeout_ms: int = 5,
        retry_after_s: float = 0.05,
    ) -> None:
        self._clock = clock
        self._defer = defer
        self._in_transaction = False
        self._retry_after_s = retry_after_s
        self._refuse_until = 0.0  # monotonic: new requests are refused at once until then
        self._unavailable_why = ""
        # The open group's writes, to undo or keep when its commit fails.
        self._group_requests: list[str] = []
        self._group_settles: dict[str, bytes | None] = {}
        self._later: dict[str, bytes] = {}  # replies to write at the next flush
        # Requests whose commit failed: they must not run (their entries are gone).
        self._lost: set[str] = set()
        # Settles not yet in the file: uuid -> reply, or _FORGET.
        self._unsettled: dict[str, bytes | None] = {}
        self._commits = 0  # counted by the writer, read by the checkpointer
        self._wal_limit_frames = wal_limit_frames
        self._restart_wal = False  # the log is past its limit: the writer should finish a copy
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: explicit transactions only, each statement commits itself.
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=_OPEN_BUSY_S
            )
            (verdict,) = self._db.execute("PRAGMA quick_check(1)").fetchone()
            if verdict != "ok":
                raise damaged(path, verdict)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
            limit_bytes = wal_limit_frames * (page_size + _FRAME_HEADER)
            self._db.execute(f"PRAGMA journal_size_limit={limit_bytes}")
            self._create()
            (self.id,) = self._db.execute(
                "SELECT value FROM meta WHERE key = 'journal_id'"
            ).fetchone()
            self._db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            # The checkpointer's own connection, opened here so that a failure is the caller's.
            self._checkpoint_db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, unreadable: not damage
                raise JournalError(f"cannot open the journal {path}: {exc}") from exc
            raise damaged(path, str(exc)) from exc
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
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)",
            (secrets.token_hex(8),),
        )
        self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self._db.execute("COMMIT")

    def get(self, uuid: str) -> JournalEntry | None:
        """The entry of ``uuid``, with a settle not yet written already applied."""
        row = self._read(f"SELECT {_COLUMNS} FROM journal WHERE uuid = ?", (uuid,))
        entry = None if not row else JournalEntry(*row[0])
        if entry is None:
            return None
        if uuid in self._later:
            return msgspec.structs.replace(entry, reply=self._later[uuid])
        if uuid not in self._unsettled:
            return entry
        reply = self._unsettled[uuid]
        if reply is _FORGET:
            return None if entry.reply is None else entry
        return msgspec.structs.replace(entry, reply=reply)

    def record_request(
        self, uuid: str, action: str, fingerprint: bytes, tag: str, request: bytes
    ) -> JournalEntry | None:
        """Record a request about to be sent to the terminal, or return the entry its uuid
        already has (and write nothing); ``JournalUnavailable`` (within ``busy_timeout_ms``)
        when that cannot be done now. One statement either way for a new uuid: no read
        first."""
        if self._unsettled.get(uuid, b"") is _FORGET:  # a retry of a uuid freed meanwhile
            self._settle(uuid, _FORGET)
        written = self._write(
            "INSERT INTO journal (uuid, action, fingerprint, tag, request, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uuid) DO NOTHING",
            (uuid, action, fingerprint, tag, request, self._clock()),
        )
        if written:
            self._group_requests.append(uuid)
            return None
        known = self.get(uuid)
        if known is None:  # its entry is being dropped, and that could not be written yet
            raise JournalUnavailable(f"the journal cannot take uuid {uuid} again yet")
        return known

    def record_reply(self, uuid: str, reply: bytes) -> None:
        """Record the final reply of a request: now, or (if the journal cannot be written)
        from memory until ``flush`` or the next group writes it. Never raises for that."""
        self._settle(uuid, reply)

    def record_reply_later(self, uuid: str, reply: bytes) -> None:
        """Record the final reply of a request at the next ``flush``: ``get`` answers with it
        at once. For a reply already sent, whose entry a crash meanwhile leaves to
        reconciliation; the caller flushes while the loop would otherwise wait."""
        self._later[uuid] = reply

    def forget(self, uuid: str) -> None:
        """Drop a request that never reached the terminal, so its uuid may be used again
        (kept in memory like a reply when it cannot be written now)."""
        self._settle(uuid, _FORGET)

    def lost(self, uuid: str) -> bool:
        """Whether ``uuid``'s request was undone by a failed commit (asked once: it must not
        run; the uuid is free for a retry)."""
        if uuid in self._lost:
            self._lost.discard(uuid)
            return True
        return False

    @property
    def unsettled(self) -> int:
        """Replies and forgets waiting to be written."""
        return len(self._unsettled)

    def flush(self) -> int:
        """Write the settles kept in memory (``record_reply_later``'s, and those a failed
        write left) into the open group or a new one; return how many remain (until that
        group's commit)."""
        if self._later:  # from now on kept like any settle not yet written
            self._unsettled.update(self._later)
            self._later.clear()
        if self._unsettled:
            if self._in_transaction:
                self._apply_unsettled()
            else:
                with contextlib.suppress(JournalUnavailable):
                    self._begin()  # which writes them all into its group
                    self._end_alone()
        return len(self._unsettled)

    def unresolved(self) -> list[JournalEntry]:
        """Requests with no recorded outcome, oldest first (settles in memory applied)."""
        rows = self._read(f"SELECT {_COLUMNS} FROM journal WHERE reply IS NULL ORDER BY id", ())
        settled = self._unsettled.keys() | self._later.keys()
        return [JournalEntry(*row) for row in rows if row[0] not in settled]

    def tags_since(self, since: float) -> dict[str, str]:
        """Tag -> uuid of every entry received since ``since`` (epoch seconds)."""
        rows = self._read("SELECT tag, uuid FROM journal WHERE received_at >= ?", (since,))
        return {tag: uuid for tag, uuid in rows}

    @property
    def last_row(self) -> int:
        """The highest row id written so far (0 for an empty journal)."""
        ((last,),) = self._read("SELECT COALESCE(MAX(id), 0) FROM journal", ())
        return int(last)

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
        ((count,),) = self._read("SELECT COUNT(*) FROM journal", ())
        return int(count)

    def commit(self) -> None:
        """Commit the grouped writes (called by ``defer``; harmless when there are none)."""
        if not self._in_transaction:
            return
        self._in_transaction = False
        requests, settles = self._group_requests, self._group_settles
        self._group_requests, self._group_settles = [], {}
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            # The group is lost: undo it. Its requests must not run (nothing would stop them
            # running twice); its settles are kept, to be written once the journal is back.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._lost.update(requests)
            self._unsettled.update(settles)
            self._unavailable(exc)
            logger.critical(
                "journal commit failed: {} order(s) refused, {} reply(s) kept in memory: {}",
                len(requests),
                len(settles),
                exc,
            )
            return
        for uuid in settles:
            if self._unsettled.get(uuid, b"") == settles[uuid]:
                del self._unsettled[uuid]
        self._committed()

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join()
        self._checkpoint_db.close()
        self.commit()
        if self.flush():
            self.commit()
        if self._unsettled:  # their entries stay open: the next start reconciles them
            logger.error(
                "journal closed with {} reply(s) it could not write; they are reconciled "
                "from the terminal's history at the next start",
                len(self._unsettled),
            )
        self._db.close()  # the last connection to close checkpoints and removes the WAL

    def _settle(self, uuid: str, reply: bytes | None) -> None:
        """Write what settles ``uuid``, or keep it in memory when that cannot be done now."""
        self._unsettled[uuid] = reply
        try:
            self._begin()  # which writes what is in memory, this one included, in a new group
        except JournalUnavailable:
            return
        if self._group_settles.get(uuid, _NOT_IN_GROUP) is not reply:
            self._apply(uuid, reply)
        self._end_alone()

    def _apply(self, uuid: str, reply: bytes | None) -> None:
        """Write one settle into the open transaction (dropped from memory at its commit)."""
        if reply is _FORGET:
            sql, params = "DELETE FROM journal WHERE uuid = ? AND reply IS NULL", (uuid,)
        else:
            sql = "UPDATE journal SET reply = ?, completed_at = ? WHERE uuid = ?"
            params = (reply, self._clock(), uuid)  # type: ignore[assignment]
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:
            logger.warning(
                "journal: the reply of {} could not be written yet ({}); kept in memory", uuid, exc
            )
            return
        self._group_settles[uuid] = reply

    def _apply_unsettled(self) -> None:
        for uuid, reply in list(self._unsettled.items()):
            if uuid not in self._group_settles:
                self._apply(uuid, reply)

    def _begin(self) -> None:
        """Open a transaction holding the write lock (grouped: one per loop turn), or raise
        ``JournalUnavailable`` within ``busy_timeout_ms``."""
        if self._in_transaction:
            return
        if time.monotonic() < self._refuse_until:
            raise JournalUnavailable(self._unavailable_why)
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        self._in_transaction = True
        if self._defer is not None:
            self._defer(self.commit)
        if self._unsettled:
            self._apply_unsettled()

    def _unavailable(self, exc: sqlite3.Error) -> JournalUnavailable:
        self._unavailable_why = f"the journal cannot be written now: {exc}"
        self._refuse_until = time.monotonic() + self._retry_after_s
        return JournalUnavailable(self._unavailable_why)

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        self._begin()
        try:
            rowcount = self._db.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            self._end_alone()
            raise JournalError(f"journal write failed: {exc}") from exc
        except sqlite3.Error as exc:
            self._end_alone()
            raise self._unavailable(exc) from exc
        self._end_alone()
        return rowcount

    def _end_alone(self) -> None:
        """Without grouping, each write is its own transaction: commit it now."""
        if self._defer is None:
            self.commit()

    def _read(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise JournalError(f"journal read failed: {exc}") from exc
            raise damaged(self.path, str(exc)) from exc

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
