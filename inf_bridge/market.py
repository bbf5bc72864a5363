"""The client's side of market data: arguments in the ``MetaTrader5`` package's forms, and
rows back as its numpy arrays.

A timeframe is taken as ``"M1"`` or as the ``TIMEFRAME_M1`` constant (``as_timeframe``); a date as
epoch seconds or a timezone-aware ``datetime``, UTC (``epoch``: a naive one is refused rather
than guessed; the Bridge sends it on the trade server's clock, ``server_times``). Bars and ticks
arrive as one frame of packed rows, which ``rows_array`` turns into the structured array
``copy_rates_*`` or ``copy_ticks_*`` would have returned, after checking it is what the reply's
header says.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from inf_bridge.errors import BadReply, InvalidRequest
from protocol import Reply, Timeframe

__all__ = ["as_timeframe", "epoch", "rows_array"]


def as_timeframe(value: str | int | Timeframe) -> Timeframe:
    """``"M1"``, ``"TIMEFRAME_M1"`` or the constant (``1``), as a ``Timeframe``."""
    try:
        return value if isinstance(value, Timeframe) else Timeframe.of(value)
    except ValueError as exc:
        raise InvalidRequest("timeframe", str(exc)) from None


def epoch(value: datetime | float | None, field: str) -> float | None:
    """A date as epoch seconds: ``value`` itself, or an aware ``datetime``'s timestamp."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidRequest(
                field,
                f"{value.isoformat()} has no time zone: give an aware datetime (e.g. "
                "tzinfo=timezone.utc) or epoch seconds",
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(field, f"{value!r} is not a date (epoch seconds or a datetime)")
    return float(value)


def rows_array(reply: Reply, body: bytes, expected: list[tuple[str, str]]) -> npt.NDArray[Any]:
    """The rows that came after ``reply`` as a (writable) structured array of ``expected``'s
    dtype; ``BadReply`` when they are not what the header says."""
    header = reply.rows
    if header is None:
        raise BadReply(f"{reply.action} reply without its rows header")
    if [tuple(field) for field in header.dtype] != expected:
        raise BadReply(f"{reply.action} rows of an unexpected dtype: {header.dtype}")
    dtype = np.dtype(expected)
    if len(body) != header.rows * dtype.itemsize:
        raise BadReply(
            f"{reply.action} promised {header.rows} rows ({header.rows * dtype.itemsize} bytes) "
            f"and sent {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=dtype).copy()  # writable, as the package's arrays are
