"""Files rotated by size and pruned by age and total size: the audit trail's and the
gateway's log's. Names carry the time (UTC) before the suffix: ``audit.<time>.jsonl``."""

from __future__ import annotations

import glob
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["closed_files", "prune", "timestamped"]


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
