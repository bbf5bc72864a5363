"""MT5_READ in the worker: one read function of the ``MetaTrader5`` package, called as asked.

A script written for the package (``inf_bridge.mt5``) gets from here what the package would
have given it on the terminal's own machine: the function is called with the arguments the
script gave, so the terminal's own checks, forms (group masks, positional-only arguments) and
errors apply, and ``last_error()`` is read in the same worker call, before anything else can
touch it. Only ``protocol.READ_FUNCTIONS`` are called. A broken terminal connection is raised
(the gateway's health then knows it), as for every other read.

An unsigned request must not hold the one worker for long (orders wait behind it): a count
of bars or ticks over the gateway's ``max_rows``, or a ``copy_rates_range`` that spans more
bars than that, is refused before the terminal is asked (``bound_problem``), and
``copy_ticks_range`` is asked as ``copy_ticks_from`` for ``max_rows + 1`` ticks at most, then
cut at ``date_to``, as GET_TICKS does: a range of years costs no more than ``max_rows`` ticks.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from msgspec import Struct

from gtw_server.adapter import TerminalAdapter
from gtw_server.errors import TerminalDisconnected, TerminalRefused
from protocol import READ_FUNCTIONS, ErrorCode, Mt5Value, struct_value

__all__ = ["Mt5Answer", "Mt5Call", "bound_problem", "call_read"]

_COUNT_AT: Final = {"copy_rates_from": 3, "copy_rates_from_pos": 3, "copy_ticks_from": 2}
_MINUTE_S: Final = 60
_WEEK_S: Final = 7 * 86_400
_MONTH_S: Final = 28 * 86_400  # the shortest month: the most bars a span can hold
_LIMIT: Final = "this gateway's limit of {} rows per request ([gateway] max_rows)"


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


def bound_problem(function: str, args: list[Any], max_rows: int) -> str | None:
    """Why this read would answer more than ``max_rows`` rows, known before the terminal is
    asked, or ``None``. (Arguments of the wrong kind are the terminal's to refuse.)"""
    if (at := _COUNT_AT.get(function)) is not None and len(args) > at:
        count = args[at]
        if isinstance(count, int) and not isinstance(count, bool) and count > max_rows:
            return f"{function} of {count} rows, over {_LIMIT.format(max_rows)}"
    if function == "copy_rates_range" and len(args) == 4:
        _, timeframe, date_from, date_to = args
        period = _period_s(timeframe)
        if period and _numbers(date_from, date_to) and (date_to - date_from) // period >= max_rows:
            return f"copy_rates_range spans more bars than {_LIMIT.format(max_rows)}"
    return None


def call_read(adapter: TerminalAdapter, call: Mt5Call) -> Mt5Answer:
    """Call ``call.function`` in the terminal; raise ``TerminalRefused`` for a function that
    is not a read, or an answer of more than ``max_rows`` rows."""
    if call.function not in READ_FUNCTIONS:  # the gateway refused it already
        raise TerminalRefused(ErrorCode.INVALID_REQUEST, f"{call.function} is not a read")
    adapter.ensure_connected()
    mt5 = adapter.mt5
    try:
        value = _call(mt5, call)
    except Exception as exc:  # the package's own: a keyword where it takes none, an overflow
        raised = Mt5Value(error=_last_error(mt5), raised=str(exc), raised_type=type(exc).__name__)
        return Mt5Answer(value=raised)
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
    try:
        carried = struct_value(value)
    except ValueError as exc:
        raise TerminalRefused(ErrorCode.INTERNAL, f"{call.function}: {exc}") from None
    return Mt5Answer(value=Mt5Value(error=error, value=carried))


def _call(mt5: Any, call: Mt5Call) -> Any:
    """The package's function as asked; ``copy_ticks_range`` bounded (see the module)."""
    if call.function == "copy_ticks_range" and len(call.args) == 4 and not call.kwargs:
        symbol, date_from, date_to, flags = call.args
        if _numbers(date_from, date_to):
            ticks = mt5.copy_ticks_from(symbol, date_from, call.max_rows + 1, flags)
            if ticks is None:
                return None
            return ticks[ticks["time_msc"] <= int(date_to) * 1000 + 999]
    return getattr(mt5, call.function)(*call.args, **call.kwargs)


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _period_s(timeframe: Any) -> int | None:
    """The shortest a bar of this ``TIMEFRAME_*`` lasts, in seconds; None if it is none."""
    if not isinstance(timeframe, int) or isinstance(timeframe, bool) or timeframe <= 0:
        return None
    if timeframe < 0x4000:  # minutes
        return timeframe * _MINUTE_S
    if timeframe >> 14 == 1:  # hours (D1 is 24 of them)
        return (timeframe & 0x3FFF) * 3600 or None
    return _WEEK_S if timeframe == 0x8001 else _MONTH_S


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
