"""MT5_READ: one read function of the ``MetaTrader5`` package, called in the terminal as asked.

What a script written for the package needs from the gateway, answered with the package's own
argument forms, checks and errors (docs/PROTOCOL.md, "MT5_READ"): the function's name, its
positional and keyword arguments as the script gave them (dates as epoch seconds), and back
what the function returned and ``last_error()`` right after it. Only the functions that change
no order or position are callable (``READ_FUNCTIONS``); ``order_send`` goes through the signed,
journaled commands, never through here.

A returned value travels as JSON: ``None``, a bool, a number, a string, a list (a tuple of the
package), or a structure as ``{"struct": "AccountInfo", "fields": [...]}`` (its fields in the
package's order, nested structures the same way). A numpy array (``copy_rates_*``,
``copy_ticks_*``) comes as the reply's ``rows`` header and the frame after it, as GET_RATES's
do.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from msgspec import Meta, Struct

from protocol import mt5_constants
from protocol.mt5_structs import STRUCT_TYPES

__all__ = [
    "BINARY_FUNCTIONS",
    "MAX_MT5_ARGS",
    "MAX_MT5_KWARGS",
    "READ_FUNCTIONS",
    "STRUCT_KEY",
    "Mt5Arg",
    "Mt5Value",
    "package_names",
    "struct_value",
]

# The functions of the package's binary (``_core``), in its documentation's order.
BINARY_FUNCTIONS: Final = (
    "initialize",
    "login",
    "shutdown",
    "version",
    "last_error",
    "account_info",
    "terminal_info",
    "symbols_total",
    "symbols_get",
    "symbol_info",
    "symbol_info_tick",
    "symbol_select",
    "market_book_add",
    "market_book_get",
    "market_book_release",
    "copy_rates_from",
    "copy_rates_from_pos",
    "copy_rates_range",
    "copy_ticks_from",
    "copy_ticks_range",
    "orders_total",
    "orders_get",
    "order_calc_margin",
    "order_calc_profit",
    "order_check",
    "order_send",
    "positions_total",
    "positions_get",
    "history_orders_total",
    "history_orders_get",
    "history_deals_total",
    "history_deals_get",
)
# Every one that changes no order or position: all but the connection's and order_send.
READ_FUNCTIONS: Final[frozenset[str]] = frozenset(BINARY_FUNCTIONS) - {
    "initialize",
    "login",
    "shutdown",
    "last_error",
    "order_send",
}
MAX_MT5_ARGS: Final = 8  # positional: the package's longest call takes 5
MAX_MT5_KWARGS: Final = 32  # order_check's keyword form: a trade request has 17 fields
STRUCT_KEY: Final = "struct"  # {"struct": type name, "fields": [...]}: a structure

_Text = Annotated[str, Meta(max_length=2048)]  # the package's longest, a group, is 1997
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]  # int64: tickets, counts, dates, magic
_Scalar = _Int | float | _Text | bool | None
# A scalar, or a trade request (order_check's one argument: a dict of scalars).
Mt5Arg = _Scalar | Annotated[dict[_Text, _Int | float | _Text | bool], Meta(max_length=32)]


class Mt5Value(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the function did: ``error`` is ``last_error()`` after it; ``value`` what it
    returned (see the module); ``raised`` the message of the exception the package raised
    instead of returning (a ``TypeError`` for a keyword where it takes none, an
    ``OverflowError`` for a number too large for it), ``raised_type`` its type's name."""

    error: tuple[int, str]
    value: Any = None
    raised: str | None = None
    raised_type: str | None = None


def struct_value(value: Any) -> Any:
    """``value`` as MT5_READ carries it: structures as ``{"struct": name, "fields": [...]}``,
    tuples as lists, numpy scalars as Python ones; ``ValueError`` for anything else (no read
    of the package returns it, and the wire could not carry it)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "_asdict"):  # a structure of the package (a struct sequence)
        return {STRUCT_KEY: type(value).__name__, "fields": [struct_value(f) for f in value]}
    if isinstance(value, tuple | list):
        return [struct_value(item) for item in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # a numpy scalar
        return struct_value(value.item())
    raise ValueError(f"a {type(value).__name__} is not a value of the package")


def package_names() -> dict[str, Any]:
    """The package's constants (its ints) and structure types, by name: what a module standing
    in for it (the simulator's, ``inf_bridge.mt5``) holds besides its functions."""
    names: dict[str, Any] = {
        name: value
        for name in mt5_constants.__all__
        if isinstance(value := getattr(mt5_constants, name), int)
    }
    return names | {kind.__name__: kind for kind in STRUCT_TYPES}
