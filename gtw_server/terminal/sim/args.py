"""The ``MetaTrader5`` binding's own argument checks, done before anything reaches the terminal.

A failed check is a ``CallFailed``, which the terminal turns into its failure return value
(``None`` or ``False``) and a ``last_error()`` of ``(-2, '<message>')`` with the binding's exact
texts (docs/MT5_API.md sections 1 and 3). The trade request rules:

- one dict, or keywords, never both (``'Unnamed arguments not allowed'``);
- keys are matched exactly; unknown keys are ignored and missing ones become 0, 0.0 or '';
- float keys take ``float`` or a subclass (numpy.float64), never ``int`` or ``None``;
- integer keys take ``int`` (bool included), never ``float``; a value outside the C type's range
  makes the binary return with an ``OverflowError`` pending, which Python reports as a
  ``SystemError`` (inferred from its disassembly, see docs/MT5_API.md);
- ``symbol`` and ``comment`` are ``str`` of at most 29 UTF-16 units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from protocol import mt5_constants as c
from protocol.mt5_structs import TradeRequest

__all__ = [
    "MAX_GROUP",
    "MAX_SYMBOL",
    "CallFailed",
    "invalid",
    "parse_date",
    "parse_request",
    "positional",
    "utf16_len",
]

MAX_SYMBOL: Final = 29  # also the limit of a request's comment
MAX_GROUP: Final = 1997

_INT_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    **dict.fromkeys(("action", "type", "type_filling", "type_time"), (0, 2**32)),
    **dict.fromkeys(("magic", "order", "deviation", "position", "position_by"), (0, 2**64)),
    "expiration": (-(2**63), 2**63),
}
_DEFAULTS: Final[Mapping[str, object]] = {"int": 0, "float": 0.0, "str": ""}
_REQUEST_FIELDS: Final = tuple(TradeRequest.__annotations__.items())
_ORDINALS: Final = ("1st", "2nd", "3rd", "4th", "5th")


class CallFailed(Exception):
    """A terminal call that fails with ``last_error() == (code, message)``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.error = (code, message)


def invalid(message: str) -> CallFailed:
    """A local argument error: code -2 with one of the binding's messages."""
    return CallFailed(c.RES_E_INVALID_PARAMS, message)


def positional(index: int) -> CallFailed:
    """The error for a bad positional argument (``index`` from 0)."""
    return invalid(f"Invalid {_ORDINALS[index]} unnamed argument")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, which is how the binding measures strings."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def parse_request(
    function: str, args: tuple[object, ...], kwargs: Mapping[str, object]
) -> TradeRequest:
    """The ``TradeRequest`` that ``order_send``/``order_check`` (``function``) would send."""
    if args and kwargs:
        raise invalid("Unnamed arguments not allowed")
    if len(args) > 1:
        raise invalid("Invalid number of arguments")
    if not args and not kwargs:
        raise invalid("Invalid arguments")
    request = args[0] if args else kwargs
    if not isinstance(request, dict):  # a dict, as PyDict_Check wants, not any mapping
        raise positional(0)
    values: list[Any] = []
    for name, kind in _REQUEST_FIELDS:
        if name not in request:
            values.append(_DEFAULTS[kind])
            continue
        value = request[name]
        if kind == "float" and isinstance(value, float):
            values.append(float(value))
        elif kind == "str" and isinstance(value, str) and utf16_len(value) <= MAX_SYMBOL:
            values.append(value)
        elif kind == "int" and isinstance(value, int):
            low, high = _INT_RANGES[name]
            if not low <= value < high:
                raise SystemError(
                    f"<built-in function {function}> returned a result with an exception set"
                ) from OverflowError(f'"{name}" out of range: {value}')
            values.append(int(value))
        else:
            raise invalid(f'Invalid "{name}" argument')
    return TradeRequest(values)


def parse_date(value: object, index: int) -> int:
    """A date argument as epoch seconds: an int or float, or a datetime (naive = local time)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, int | float) and math.isfinite(value):
        return int(value)
    raise positional(index)
