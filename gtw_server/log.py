"""Logging for the gateway: loguru, human lines on stderr and, optionally, a rotated file
(what a Windows service, which has no console, writes to).

The file is rotated as the audit trail is (``plumbing.audit.AuditFile``): on POSIX the
current file keeps its name and a full one is renamed ``gateway.<time>.log``; on Windows,
where a file someone reads with ``Get-Content -Wait`` cannot be renamed, every file is named
``gateway.<start time>.log`` from the start and never renamed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loguru import logger

from plumbing.rotation import closed_files, prune
from plumbing.units import parse_age, parse_size

__all__ = ["configure_logging"]

_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | gateway | {message}"


def configure_logging(
    level: str,
    *,
    file: Path | None = None,
    rotation: str = "50 MB",
    retention: str = "30 days",
    retention_size: str | None = None,
    console: bool = True,
    platform: str = sys.platform,
) -> None:
    """Send the gateway's log lines at ``level`` and above to stderr and/or ``file``.

    ``file`` is rotated at ``rotation`` (a size); rotated files older than ``retention`` (an
    age) are deleted, then the oldest while they take more than ``retention_size``.
    ``diagnose`` stays off: it would print variable values, secrets included, in tracebacks.
    """
    logger.remove()
    if console and sys.stderr is not None:  # a service process may have no stderr at all
        logger.add(sys.stderr, level=level, format=_FORMAT, backtrace=False, diagnose=False)
    if file is None:
        return
    by_start_time = platform == "win32"
    max_age_s = parse_age(retention, "log retention")
    max_bytes = None if retention_size is None else parse_size(retention_size, "log retention size")

    def retain(_rotated: object = None) -> None:
        # loguru passes the files it found; ours are the same, found the audit trail's way.
        prune(
            closed_files(file, current=not by_start_time), max_age_s=max_age_s, max_bytes=max_bytes
        )

    file.parent.mkdir(parents=True, exist_ok=True)
    retain()  # what earlier runs left: on Windows each run starts a new file
    logger.add(
        # loguru names a file by its start time when the path has {time}, and then never
        # renames it; without, it renames the full file.
        file.with_name(f"{file.stem}.{{time}}{file.suffix}") if by_start_time else file,
        level=level,
        format=_FORMAT,
        rotation=parse_size(rotation, "log rotation"),
        retention=retain,
        backtrace=False,
        diagnose=False,
    )
