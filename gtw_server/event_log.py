"""The trade event log: every trade event the gateway has seen, numbered without gaps.

A client that was away (disconnected, restarted, too slow for the live stream) asks for what
came after the last sequence number it saw (GET_EVENTS) and gets each event once, in order; so
every event is committed here before it is published, and published with its number. The
watcher's own place in the terminal's history (the last deal seen, the pending orders as they
were) is committed in the same transaction as the events it produced: after a crash, the next
look starts exactly where the last committed one ended, so nothing is missed or told twice,
across restarts too.

SQLite in WAL mode, ``synchronous=NORMAL`` (a commit survives the process being killed), in
its own file beside the journal (``events.sqlite3``): the order path never touches it. Numbers
come from an ``AUTOINCREMENT`` key, so they never go back, even when pruning has emptied the
table. Each log has a random ``id``: a log deleted by hand starts again from 1 under another
id, and a client that sees the id change knows its numbers mean nothing there.

Every call blocks (disk, and another process's lock for up to ``busy_timeout_ms``): the
gateway makes them on a thread (``anyio.to_thread``), never on its event loop. Writes and
reads have a connection each, so a reader never waits behind a stalled write.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import msgspec
from msgspec import Struct

from gtw_server.errors import EventLogError
from protocol import Event, decode_event, encode

__all__ = ["EventLog", "Page"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""
_PRUNE_BATCH: Final = 1000


class Page(Struct, frozen=True, kw_only=True):
    """Events after a sequence number, and the bounds of what the log keeps (0 when empty)."""

    events: list[Event]
    first_seq: int
    last_seq: int


class EventLog:
    """The event log in ``path`` (created if missing); events older than ``retention_s`` are
    pruned by ``prune``."""

    def __init__(
        self,
        path: Path,
        *,
        retention_s: float,
        busy_timeout_ms: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention_s = retention_s
        self._clock = clock
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = _connect(path, busy_timeout_ms)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)",
                (secrets.token_hex(8).encode(),),
            )
            db.execute("COMMIT")
            (log_id,) = db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            self._reader = _connect(path, busy_timeout_ms)
        except sqlite3.Error as exc:
            if db is not None:
                db.close()  # a file that is not a log is left as it was, and not held
            raise EventLogError(f"cannot open the event log {path}: {exc}") from exc
        self._db = db
        self.id: str = log_id.decode()
        self.last_seq = int(row[0]) if row else 0

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._db.close()
            self._reader.close()

    # -- writing --------------------------------------------------------------------------------

    def append(self, events: Iterable[Event], state: dict[str, bytes]) -> list[Event]:
        """Number ``events`` after the last and commit them, with the watcher's ``state``
        (key -> value), in one transaction; return them numbered. Raises ``EventLogError``
        when the commit fails (nothing of it is kept: the same look may be made again)."""
        with self._write_lock:
            numbered: list[Event] = []
            seq = self.last_seq
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for event in events:
                    seq += 1
                    kept = msgspec.structs.replace(event, seq=seq, log=self.id)
                    self._db.execute(
                        "INSERT INTO events (seq, time, body) VALUES (?, ?, ?)",
                        (seq, kept.time, encode(kept)),
                    )
                    numbered.append(kept)
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", state.items()
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise EventLogError(
                    f"the event log {self.path} could not be written: {exc}"
                ) from exc
            self.last_seq = seq
            return numbered

    def prune(self) -> int:
        """Drop events older than ``retention_s``, a batch at a time; returns how many."""
        cutoff = self._clock() - self.retention_s
        dropped = 0
        while True:
            with self._write_lock:
                try:
                    cursor = self._db.execute(
                        "DELETE FROM events WHERE seq IN "
                        "(SELECT seq FROM events WHERE time < ? ORDER BY seq LIMIT ?)",
                        (cutoff, _PRUNE_BATCH),
                    )
                except sqlite3.Error as exc:
                    raise EventLogError(
                        f"the event log {self.path} could not be pruned: {exc}"
                    ) from exc
            dropped += cursor.rowcount
            if cursor.rowcount < _PRUNE_BATCH:
                return dropped

    # -- reading --------------------------------------------------------------------------------

    def state(self, key: str) -> bytes | None:
        """The watcher's state under ``key``, as last committed."""
        row = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(row[0][0]) if row else None

    def since(self, seq: int, limit: int) -> Page:
        """Up to ``limit`` events after ``seq``, oldest first."""
        rows = self._read(
            "SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        bounds = self._read("SELECT MIN(seq), MAX(seq) FROM events", ())
        first, last = bounds[0]
        return Page(
            events=[decode_event(body) for (body,) in rows],
            first_seq=first or 0,
            last_seq=last or self.last_seq,
        )

    def _read(self, query: str, args: tuple[object, ...]) -> list[Any]:
        with self._read_lock:
            try:
                return self._reader.execute(query, args).fetchall()
            except sqlite3.Error as exc:
                raise EventLogError(f"the event log {self.path} could not be read: {exc}") from exc


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: explicit transactions only. Used from the gateway's threads, one
    # at a time (the locks above).
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    db.execute("PRAGMA synchronous=NORMAL")
    return db
