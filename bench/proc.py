"""What Linux's /proc says about a process: resident size and CPU time.

psutil is not a dependency, and these two numbers need no more than a file read. Elsewhere
(macOS, Windows) each function returns ``None`` and the report says "n/a".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["cpu_seconds", "rss_bytes"]

_PROC: Final = Path("/proc")
# Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the ")" that ends the
# command name, which may itself contain spaces and parentheses.
_UTIME: Final = 11
_STIME: Final = 12


def rss_bytes(pid: int) -> int | None:
    """The resident set size of ``pid`` (VmRSS), or ``None`` when it cannot be read."""
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` and of its living descendants, in seconds.

    The gateway's terminal worker is its child, so an order's whole server-side cost is the
    tree's. ``None`` when ``pid`` cannot be read.
    """
    own = _own_cpu(pid)
    if own is None:
        return None
    return own + sum(cpu_seconds(child) or 0.0 for child in _children(pid))


def _own_cpu(pid: int) -> float | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[_UTIME]) + int(fields[_STIME])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended in between
    return children
