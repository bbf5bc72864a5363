"""The trade server's clock, as the gateway learns it: how far the terminal's times are from UTC.

MetaTrader 5 gives every time on its trade server's clock, commonly UTC+2 in winter and UTC+3
in summer, and takes dates on it too (docs/PROTOCOL.md, "Times"). The gateway learns the
offset from the terminal's freshest quote at every status poll (every second while connected,
and at each reconnection): the quote's time minus this machine's UTC clock, to the quarter
hour, trusted only when the quote is at most five minutes old (a closed market's last quote
says nothing). So a daylight-saving change is seen with the first quote after it. What it
learned is kept in the data directory (``server_offset.json``, each change with when it was
seen), so a gateway started on a weekend knows the last offset, and times before a change
keep the offset they had.

With ``[gateway] server_timezone`` the zone is the truth, daylight-saving changes included,
before the first quote and for any date; a learned offset that differs from it is a warning
(the zone is wrong, or the machine's clock is).

>>> import tempfile, pathlib
>>> offset = ServerOffset(pathlib.Path(tempfile.mkdtemp()) / "server_offset.json")
>>> offset.learn(quote_s=1_767_232_790.0, now_s=1_767_225_600.0)  # 10 s old, 2 h ahead
"the trade server is on UTC+2 (from the terminal's quotes)"
>>> offset.offset_s, offset.learn(quote_s=1_767_232_000.0, now_s=1_767_225_600.0)  # stale
(7200, None)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import msgspec
from loguru import logger
from msgspec import Struct

from plumbing.files import atomic_write
from protocol import ServerClock, describe_offset

__all__ = ["OFFSET_FILE", "ServerOffset"]

OFFSET_FILE: Final = "server_offset.json"
_STEP_S: Final = 900  # zones are whole quarter hours from UTC
# A quote at most this old (or this far ahead: the two clocks differ a little) tells the time.
_OLDEST_S: Final = 300
_AHEAD_S: Final = 60


class _Learned(Struct, frozen=True, kw_only=True):
    """What is kept in the data directory: each offset seen, from when (UTC epoch s)."""

    offsets: list[tuple[int, int]] = msgspec.field(default_factory=list)


class ServerOffset:
    """The server's offset from UTC, learned from quotes (kept at ``path``) or from ``zone``."""

    def __init__(self, path: Path, zone: str | None = None) -> None:
        self.path = path
        self.zone = zone
        self._zone_clock = ServerClock(zone) if zone else None
        self._offsets = self._read()
        self._disagreed: int | None = None  # the learned offset last warned about

    @property
    def offset_s(self) -> int | None:
        """The offset now: the zone's, else the last learned (``None``: not known yet)."""
        if self._zone_clock is not None:
            return self._zone_clock.offset_s(time.time())
        return self._offsets[-1][1] if self._offsets else None

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """Each learned offset with the UTC second it was first seen, oldest first."""
        return list(self._offsets)

    def learn(self, quote_s: float, now_s: float) -> str | None:
        """Take a quote's time (the server's clock) seen at ``now_s`` (UTC): what to log when
        it shows an offset not known before, else ``None``. Call ``save`` after a change."""
        seen = round((quote_s - now_s) / _STEP_S) * _STEP_S
        if not -_OLDEST_S <= quote_s - now_s - seen <= _AHEAD_S:
            return None  # a quote too old to tell the time by
        if self._zone_clock is not None:
            expected = self._zone_clock.offset_s(now_s)
            if seen in (expected, self._disagreed):
                return None
            self._disagreed = seen
            return (
                f"the terminal's quotes say the trade server is on {describe_offset(seen)}, "
                f"but [gateway] server_timezone {self.zone} is {describe_offset(expected)} now: "
                "times are converted by the zone; check it, and this machine's clock"
            )
        if self._offsets and self._offsets[-1][1] == seen:
            return None
        before = self._offsets[-1][1] if self._offsets else None
        self._offsets.append((int(now_s), seen))
        if before is None:
            return f"the trade server is on {describe_offset(seen)} (from the terminal's quotes)"
        return (
            f"the trade server's clock moved from {describe_offset(before)} to "
            f"{describe_offset(seen)} (a daylight-saving change?)"
        )

    def save(self) -> None:
        """Keep what was learned (blocking I/O: call it from a thread)."""
        atomic_write(self.path, msgspec.json.encode(_Learned(offsets=self._offsets)))

    def _read(self) -> list[tuple[int, int]]:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=_Learned).offsets
        except FileNotFoundError:
            return []
        except (OSError, msgspec.DecodeError) as exc:
            logger.warning("{} cannot be read ({}): the offset is learned again", self.path, exc)
            return []
