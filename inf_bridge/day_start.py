"""The day's starting equity, kept in a file so that the daily loss limit outlives the process.

``RiskLimits.max_daily_loss`` measures equity against the UTC day's first reading. Held in
memory only, that reading is taken again whenever the strategy restarts: a node that lost its
limit, crashed and was restarted by its supervisor would get a whole new day's allowance. With
``RiskLimits.daily_loss_file`` the first reading is written here, and a restarted node (or a
second one on the same account and file) reads it back instead of taking its own.

The file is one small JSON object, ``{"day", "login", "server", "equity"}``, replaced
atomically once a day: written to a temporary file of its own beside it, flushed to disk, and
renamed over it, so that two nodes starting their day at once leave one whole reading (the
later one's), never a mix. A reading for another day or another account does not apply, and
is replaced. A file that cannot be read is logged as an ERROR before it is replaced: the day's
count then starts again from the present equity, which is what an operator must know.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from loguru import logger

from plumbing.files import atomic_write

__all__ = ["DayStart", "prepare", "read_day_start", "write_day_start"]


class DayStart(msgspec.Struct, frozen=True, kw_only=True):
    """The first equity reading of ``day`` (an ISO date, UTC) on one account. Fields a later
    version adds are ignored rather than making the file unreadable."""

    day: str
    login: int
    server: str
    equity: float

    def applies_to(self, day: str, login: int, server: str) -> bool:
        """Whether this is the reading of ``day`` on the account ``login`` at ``server``."""
        return (self.day, self.login, self.server) == (day, login, server)


def prepare(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` can hold the reading: its directory exists (or is made) and the
    path is not a directory. Raises ``OSError`` otherwise, at start rather than at the day's
    first reading."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.is_dir():
        raise IsADirectoryError(f"{file} is a directory")
    return file


def read_day_start(path: Path) -> DayStart | None:
    """The stored reading, or ``None`` when there is none or it cannot be read (logged: the
    caller then starts a new one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("cannot read the day's starting equity from {}: {}", path, exc)
        return None
    try:
        return msgspec.json.decode(data, type=DayStart)
    except msgspec.DecodeError as exc:
        logger.error(
            "{} holds no readable starting equity ({}); the day's loss is counted again from now",
            path,
            exc,
        )
        return None


def write_day_start(path: Path, reading: DayStart) -> None:
    """Store ``reading`` in place of what ``path`` held. A failure is logged, and the reading
    then lives only as long as the process."""
    try:
        atomic_write(path, msgspec.json.encode(reading))
    except OSError as exc:
        logger.error(
            "cannot store the day's starting equity in {}: {}; a restart would start the "
            "day's loss count again",
            path,
            exc,
        )
