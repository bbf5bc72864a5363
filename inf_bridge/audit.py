"""The audit trail: one record per stage of every order, each with its uuid.

Stages of an order on the node, in the order they happen: ``[RISK_PASS]`` (before the send)
or ``[RISK_REJECTED]`` (the node refused it, nothing sent); ``[ZMQ_SENT]`` (once per attempt,
once it is in the socket); then ``[MT5_FILLED]``, ``[MT5_REJECTED]`` (the terminal's verdict),
``[REJECTED]`` (the gateway's refusal, before the terminal), ``[NOT_EXECUTED]`` or
``[OUTCOME_UNKNOWN]``. On the gateway (``source`` ``gateway``): ``[ORDER_RECEIVED]``,
``[MT5_FILLED]``, ``[MT5_REJECTED]``, ``[REJECTED]``, ... And for the link itself
``[HEARTBEAT_FAIL]``, ``[CIRCUIT_OPEN]``, ``[CIRCUIT_CLOSED]``. Each record is

- a line in every audit file opened with ``add_audit_file``: one JSON object per line
  (``time``, ``level``, ``source``, ``event``, ``uuid``, the event's fields, ``message``),
  written straight to the file (no buffer to lose in a crash), rotated by size and pruned by
  age and, if asked, by total size (``AuditFile`` says how files are named on each platform);
- and a human line through loguru, marked ``audit``, wherever the application sends its logs.

    trail = add_audit_file("audit/orders.jsonl")   # rotated at 50 MB, kept 90 days
    ...
    trail.close()

The files are written directly rather than through a loguru sink: a loguru record costs
about 12 us, a direct line about 3, and an order has several stages.
Nothing secret is ever recorded: not the shared secret, not a signature.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import msgspec
from loguru import logger

__all__ = [
    "AuditFile",
    "add_audit_file",
    "closed_files",
    "parse_age",
    "parse_size",
    "prune",
    "record",
    "timestamped",
]

_audit: Final = logger.bind(audit=True)
_encoder: Final = msgspec.json.Encoder()
_files: list[AuditFile] = []
_failing: set[AuditFile] = set()  # files whose last write failed
_SIZE_UNITS: Final = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_AGE_UNITS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}


def record(
    event: str,
    message: str,
    *,
    uuid: str | None = None,
    level: str = "INFO",
    source: str = "node",
    **fields: Any,
) -> None:
    """Record one audit event, e.g. ``record("MT5_FILLED", "ticket 7", uuid=u, ticket=7)``.

    ``source`` says which side wrote it: ``node`` (this client) or ``gateway``.
    """
    if _files:
        line = _encoder.encode(
            {
                "time": datetime.now(UTC).isoformat(),
                "level": level,
                "source": source,
                "event": event,
                "uuid": uuid,
                **fields,
                "message": f"[{event}] {message}",
            }
        )
        for audit_file in _files:
            if audit_file.source in (None, source):
                _append(audit_file, line)
    # The console's line names the order: "[MT5_FILLED] 3f2a... OPEN ticket=7" (the files
    # have the uuid as a field of its own).
    if uuid is None:
        _audit.log(level, "[{}] {}", event, message)
    else:
        _audit.log(level, "[{}] {} {}", event, uuid, message)


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


def timestamped(path: Path) -> Path:
    """``path`` with the time (UTC, to the microsecond) before its suffix: ``a.<time>.jsonl``."""
    return path.with_name(f"{path.stem}.{datetime.now(UTC):%Y-%m-%d_%H-%M-%S_%f}{path.suffix}")


def closed_files(path: Path, *, current: bool) -> list[Path]:
    """The files of the trail written at ``path`` that nobody writes to any more: those
    named ``stem.*suffix``, and ``path`` itself unless it is the ``current`` file."""
    pattern = f"{glob.escape(path.stem)}.*{glob.escape(path.suffix)}"
    return [*path.parent.glob(pattern), *([] if current or not path.exists() else [path])]


def prune(files: Iterable[Path], *, max_age_s: float, max_bytes: int | None) -> None:
    """Delete the files older than ``max_age_s``, then the oldest of the rest while they
    take more than ``max_bytes`` together. A file that cannot be deleted (on Windows, one
    another process holds open) stays, and counts, until the next time."""
    found = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        found.append((stat.st_mtime, stat.st_size, file))
    found.sort()  # oldest first
    cutoff = time.time() - max_age_s
    total = sum(size for _, size, _ in found)
    for mtime, size, file in found:
        if mtime >= cutoff and (max_bytes is None or total <= max_bytes):
            break  # the rest are newer still, and within the bound
        try:
            file.unlink(missing_ok=True)
        except OSError:
            continue
        total -= size


def parse_size(text: str, what: str) -> int:
    """``"50 MB"`` -> bytes; ``ValueError`` naming ``what``."""
    return _parse(text, _SIZE_UNITS, what)


def parse_age(text: str, what: str) -> int:
    """``"90 days"`` -> seconds; ``ValueError`` naming ``what``."""
    return _parse(text, _AGE_UNITS, what)


def _parse(text: str, units: dict[str, int], what: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+?)s?\s*", text)
    unit = match.group(2) if match else ""
    factor = units.get(unit.upper() if units is _SIZE_UNITS else unit.lower())
    if match is None or factor is None:
        raise ValueError(f"{what} {text!r}: expected a number and one of {', '.join(units)}")
    return int(float(match.group(1)) * factor)
