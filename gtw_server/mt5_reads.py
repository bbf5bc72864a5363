"""MT5_READ in the worker: one read function of the ``MetaTrader5`` package, called as asked.

A script written for the package (``inf_bridge.mt5``) gets from here what the package would
have given it on the terminal's own machine: the function is called with the arguments the
script gave, so the terminal's own checks, forms (group masks, positional-only arguments) and
errors apply, and ``last_error()`` is read in the same worker call, before anything else can
touch it. Only ``protocol.READ_FUNCTIONS`` are called. A broken terminal connection is raised
(the gateway's health then knows it), as for every other read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from msgspec import Struct

from gtw_server.adapter import TerminalAdapter
from gtw_server.errors import TerminalDisconnected, TerminalRefused
from protocol import READ_FUNCTIONS, ErrorCode, Mt5Value, struct_value

__all__ = ["Mt5Answer", "Mt5Call", "call_read"]


class Mt5Call(Struct, frozen=True, kw_only=True):
    """An MT5_READ for the worker, with the gateway's ``max_rows``."""

    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    max_rows: int


class Mt5Answer(Struct, frozen=True, kw_only=True):
    """What the function did; an array's bytes in ``data`` (``rows`` of ``dtype``)."""

    value: Mt5Value
    dtype: list[tuple[str, str]] | None = None
    rows: int = 0
    data: bytes = b""


def call_read(adapter: TerminalAdapter, call: Mt5Call) -> Mt5Answer:
    """Call ``call.function`` in the terminal; raise ``TerminalRefused`` for a function that
    is not a read, or an answer of more than ``max_rows`` rows."""
    if call.function not in READ_FUNCTIONS:  # the gateway refused it already
        raise TerminalRefused(ErrorCode.INVALID_REQUEST, f"{call.function} is not a read")
    adapter.ensure_connected()
    mt5 = adapter.mt5
    try:
        value = getattr(mt5, call.function)(*call.args, **call.kwargs)
    except TypeError as exc:  # the package's own: a keyword where it takes none, say
        return Mt5Answer(value=Mt5Value(error=_last_error(mt5), raised=str(exc)))
    if value is None and isinstance(failure := adapter.failed(call.function), TerminalDisconnected):
        raise failure
    error = _last_error(mt5)
    if isinstance(value, np.ndarray):
        _within(call, len(value))
        dtype = [(str(name), str(kind)) for name, kind in value.dtype.descr]
        answer = Mt5Value(error=error)
        return Mt5Answer(value=answer, dtype=dtype, rows=len(value), data=value.tobytes())
    if isinstance(value, tuple) and not hasattr(value, "_asdict"):
        _within(call, len(value))
    return Mt5Answer(value=Mt5Value(error=error, value=struct_value(value)))


def _last_error(mt5: Any) -> tuple[int, str]:
    code, message = mt5.last_error()
    return int(code), str(message)


def _within(call: Mt5Call, rows: int) -> None:
    if rows > call.max_rows:
        raise TerminalRefused(
            ErrorCode.TOO_LARGE,
            f"{call.function} found {rows} rows, over this gateway's limit of {call.max_rows} "
            "per request ([gateway] max_rows); ask for fewer",
        )
