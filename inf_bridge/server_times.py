"""Times at the client's edge, in UTC (docs/PROTOCOL.md, "Times").

The terminal gives every time on its trade server's clock, commonly UTC+2 or UTC+3, and the
wire passes them as they are. The ``Bridge`` converts: every time it returns (ticks, bars,
positions, pending and historical orders, deals, trade events, the ``time`` columns of
``rates`` and ``ticks_history``) is UTC, and a record keeps the offset it was converted by
beside it (``server_offset_s``: server time = UTC + it); every date it takes is UTC (an aware
``datetime`` or epoch seconds; a naive ``datetime`` is refused) and goes to the terminal on
its clock. The offsets are the gateway's, from its PING (the heartbeat's every beat): a zone
its operator named, or the offsets it learned from the terminal's quotes, each from when it
was first seen. Until the gateway knows, times are left as the terminal gave them, said once
in the log.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt
from loguru import logger

from protocol import GatewayInfo, ServerClock

__all__ = ["ServerTimes"]

R = TypeVar("R", bound=msgspec.Struct)

_UTC = ServerClock("UTC")


class ServerTimes:
    """The trade server's clock as the gateway last said it, and the conversions by it."""

    def __init__(self) -> None:
        self._said: tuple[Any, ...] | None = None
        self.clock = _UTC
        self.known = False
        self._warned = False

    def update(self, info: GatewayInfo | None) -> None:
        """Take what the last PING said of the server's clock (rebuilt only when it changed)."""
        if info is None:
            return
        said = (info.server_offset_s, info.server_timezone, info.server_offsets)
        if said == self._said:
            return
        self._said = said
        if info.server_timezone:
            self.clock, self.known = ServerClock(info.server_timezone), True
        elif info.server_offsets:
            self.clock, self.known = ServerClock("learned", info.server_offsets), True
        elif info.server_offset_s is not None:
            self.clock, self.known = ServerClock("learned", [(0, info.server_offset_s)]), True

    def to_utc(self, record: R) -> R:
        """``record`` (a ``Tick``, ``Bar``, ``Order``, ``Deal``, ``Position`` or
        ``SymbolInfo``) with its times in UTC and ``server_offset_s`` set where it has one."""
        if not self._ready():
            return record
        clock = self.clock
        changes: dict[str, int] = clock.moved(msgspec.structs.asdict(record), to_server=False)
        if "server_offset_s" in record.__struct_fields__:
            main = changes.get("time", changes.get("time_setup", 0))
            changes["server_offset_s"] = clock.offset_s(main)
        return msgspec.structs.replace(record, **changes)

    def rows_to_utc(self, rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The ``time`` (and ``time_msc``) columns of ``rates``' or ``ticks_history``'s rows
        in UTC, in place."""
        if not self._ready() or not len(rows):
            return rows
        if "time_msc" in (rows.dtype.names or ()):
            rows["time_msc"] = self.clock.to_utc_ms(rows["time_msc"])
            rows["time"] = rows["time_msc"] // 1000
        else:
            rows["time"] = self.clock.to_utc_ms(rows["time"] * np.int64(1000)) // 1000
        return rows

    def to_server(self, utc_s: float | None) -> float | None:
        """A date the client gave (UTC epoch seconds) on the terminal's clock."""
        if utc_s is None or not self._ready():
            return utc_s
        return self.clock.to_server_ms(round(utc_s * 1000)) / 1000

    def to_utc_s(self, server_s: int) -> int:
        """A time on the terminal's clock (epoch seconds) in UTC."""
        return self.clock.to_utc_ms(server_s * 1000) // 1000 if self._ready() else server_s

    def _ready(self) -> bool:
        if self.known:
            return True
        if not self._warned:
            self._warned = True
            logger.warning(
                "the gateway does not know the trade server's clock yet: times are the "
                "terminal's, not UTC (set [gateway] server_timezone on the gateway)"
            )
        return False
