"""Writing the audit trail: each record to every audit file that takes its side, and a human
line to the log (loguru, marked ``audit``).

The record itself is the contract's (``protocol.audit``); each side calls ``record`` with its
``source`` (``inf_bridge.audit`` for the node, ``gtw_server.audit`` for the gateway), and opens
its own files with ``add_audit_file``.

    trail = add_audit_file("audit/orders.jsonl", source="node")   # rotated at 50 MB, kept 90 days
    ...
    trail.close()

The files are written directly rather than through a loguru sink: a loguru record costs
about 12 us, a direct line about 3, and an order has several stages. Nothing secret is ever
recorded: not the shared secret, not a signature.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from loguru import logger

from plumbing.rotation import closed_files, prune, timestamped
from plumbing.units import parse_age, parse_size
from protocol.audit import AuditEvent, AuditSource, audit_line

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["AuditFile", "add_audit_file", "record", "write_later"]

# depth=2 (the caller of ``record``, above ``_write``): the log line is the caller's
# (inf_bridge.client, gtw_server.executor, ...), so each side's logging and filters see its own
# audit lines; a record kept for later names its caller too (``origin``).
_audit: Final = logger.bind(audit=True).opt(depth=2)
_files: list[AuditFile] = []
_failing: set[AuditFile] = set()  # files whose last write failed


class _Kept:
    """The records kept for ``write_later``, in order, and whether they are being written
    (a kept record, written, must not write the ones after it first)."""

    def __init__(self) -> None:
        self.records: deque[Callable[[], None]] = deque()
        self.writing = False


_kept: Final = _Kept()


def record(
    event: AuditEvent,
    message: str,
    *,
    source: AuditSource,
    uuid: str | None = None,
    level: str = "INFO",
    at: datetime | None = None,
    console: bool = True,
    later: bool = False,
    **fields: Any,
) -> None:
    """Record one audit event, e.g. ``record(AuditEvent.MT5_FILLED, "ticket 7", source="node",
    uuid=u, ticket=7)``; ``at``: when it happened, if that was before now; ``console``:
    False to write it to the audit files only, not as a log line; ``later``: keep it (with the
    time of now) until ``write_later`` or the next record written now, which writes the kept
    ones first: the files keep the order in which things happened."""
    if later:
        caller = sys._getframe(1)  # the log line is still the caller's (see ``_audit``)
        origin = (caller.f_globals.get("__name__"), caller.f_code.co_name, caller.f_lineno)
        when = at or datetime.now(UTC)
        kept = partial(_write, event, message, source=source, uuid=uuid, level=level, at=when)
        _kept.records.append(partial(kept, console=console, fields=fields, origin=origin))
        return
    if _kept.records:
        write_later()
    _write(
        event, message, source=source, uuid=uuid, level=level, at=at, console=console, fields=fields
    )


def write_later() -> None:
    """Write the records kept for later, in order. One that fails is said and dropped: it
    must not stop the record (or the order) that happens to write it."""
    if _kept.writing:
        return
    _kept.writing = True
    try:
        while _kept.records:
            try:
                _kept.records.popleft()()
            except Exception:
                logger.exception("an audit record kept for later could not be written")
    finally:
        _kept.writing = False


def _write(
    event: AuditEvent,
    message: str,
    *,
    source: AuditSource,
    uuid: str | None,
    level: str,
    at: datetime | None,
    console: bool,
    fields: dict[str, Any],
    origin: tuple[str | None, str, int] | None = None,
) -> None:
    """Write one record to the files and (``console``) as a log line; ``origin``: the caller
    of a record kept for later, which the log line names."""
    if _files:
        line = audit_line(
            event,
            message,
            time=at or datetime.now(UTC),
            uuid=uuid,
            level=level,
            source=source,
            **fields,
        )
        for audit_file in _files:
            if audit_file.source in (None, source):
                _append(audit_file, line)
    # The console's line names the order: "[MT5_FILLED] 3f2a... OPEN ticket=7" (the files
    # have the uuid as a field of its own).
    if not console:
        return
    log = _audit
    if origin is not None:
        name, function, line_no = origin

        def named(entry: Record) -> None:
            entry["name"], entry["function"], entry["line"] = name, function, line_no

        log = _audit.patch(named)
    if uuid is None:
        log.log(level, "[{}] {}", event, message)
    else:
        log.log(level, "[{}] {} {}", event, uuid, message)


def _append(audit_file: AuditFile, line: bytes) -> None:
    """Write one line. A file that cannot be written (a full disk) must not stop the order the
    line is about: say so once, and once more when it is written again."""
    try:
        audit_file.write(b"\n" + line if audit_file in _failing else line)  # end a torn line
    except OSError as exc:
        if audit_file not in _failing:
            _failing.add(audit_file)
            logger.error(
                "audit file {}: lines are lost until it can be written: {}", audit_file.path, exc
            )
        return
    if audit_file in _failing:
        _failing.discard(audit_file)
        logger.warning("audit file {}: written again", audit_file.path)


class AuditFile:
    """JSON lines appended to a file that is rotated when it passes ``rotation_bytes``.

    Rotated files older than ``retention_s`` are deleted, then the oldest of the rest while
    they take more than ``retention_bytes`` together (``None``: no size bound).

    Where a file can be renamed while someone reads it (POSIX), the current file is always
    ``path``, and a full one is renamed ``stem.<time>.suffix``: ``tail -F path`` follows the
    trail. On Windows a file cannot be renamed (nor deleted) while another process holds it
    open without sharing delete access, which ``Get-Content -Wait`` does; so there every file
    is named ``stem.<start time>.suffix`` from the start and never renamed (``current`` is the
    one being written). A rename that fails anyway leaves the full file in place and switches
    to those names.
    """

    def __init__(
        self,
        path: Path,
        *,
        source: str | None,
        rotation_bytes: int,
        retention_s: float,
        retention_bytes: int | None = None,
        platform: str = sys.platform,
    ) -> None:
        self.path = path
        self.source = source
        self._rotation_bytes = rotation_bytes
        self._retention_s = retention_s
        self._retention_bytes = retention_bytes
        self._by_start_time = platform == "win32"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._open_next()
        self._size = self._file.tell()

    @property
    def current(self) -> Path:
        """The file being written."""
        return Path(self._file.name)

    def write(self, line: bytes) -> None:
        if self._file.closed:  # a rotation that could not open the next file: try again
            self._file = self._open_next()
            self._size = self._file.tell()
        self._file.write(line + b"\n")
        self._size += len(line) + 1
        if self._size >= self._rotation_bytes:
            self._rotate()

    def close(self) -> None:
        if self in _files:
            _files.remove(self)
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        if not self._by_start_time:
            try:
                os.replace(self.path, timestamped(self.path))
            except PermissionError:  # someone holds it open (Windows): leave it where it is
                self._by_start_time = True
        self._file = self._open_next()
        self._size = 0

    def _open_next(self) -> IO[bytes]:
        """Prune what is closed, then open the file to write next."""
        prune(
            closed_files(self.path, current=not self._by_start_time),
            max_age_s=self._retention_s,
            max_bytes=self._retention_bytes,
        )
        path = timestamped(self.path) if self._by_start_time else self.path
        return path.open("ab", buffering=0)


def add_audit_file(
    path: str | os.PathLike[str],
    *,
    rotation: str = "50 MB",
    retention: str = "90 days",
    retention_size: str | None = None,
    source: str | None = None,
) -> AuditFile:
    """Write every audit event (of ``source`` only, if given) to ``path`` as JSON lines;
    ``close()`` the result to stop. ``rotation`` is a size ("50 MB"), ``retention`` an age
    ("90 days"), ``retention_size`` the most the rotated files may take together ("1 GB")."""
    audit_file = AuditFile(
        Path(path),
        source=source,
        rotation_bytes=parse_size(rotation, "audit rotation"),
        retention_s=parse_age(retention, "audit retention"),
        retention_bytes=(
            None if retention_size is None else parse_size(retention_size, "audit retention size")
        ),
    )
    _files.append(audit_file)
    return audit_file
