"""Swaps: the overnight interest that positions held through a rollover pay or earn.

The simulated server rolls over at 22:00 UTC, the FX day's end (midnight on the EET clock of
most MetaTrader servers), after each trading day from Monday to Friday. Every position open
at that instant is charged, in its ``swap``, its symbol's ``swap_long`` (buys) or
``swap_short`` (sells) in points (``SYMBOL_SWAP_MODE_POINTS``) per lot: a point of one lot is
worth the symbol's tick value, converted to the account currency at the rollover's quotes.
Wednesday's rollover counts three nights (``swap_rollover3days``), for the weekend, so a week
charges seven. A deal that closes part or all of a position realises the same share of its
swap: the deal's ``swap`` field, which moves the balance with its ``profit``.

>>> tuesday_noon = 1_699_963_200_000  # 2023-11-14 12:00 UTC
>>> next_rollover(tuesday_noon)  # 22:00 that Tuesday
1699999200000
>>> nights(next_rollover(1_699_999_200_000))  # Wednesday's
3
>>> friday_rollover = 1_700_258_400_000  # 2023-11-17 22:00 UTC
>>> (next_rollover(friday_rollover) - friday_rollover) // 86_400_000  # then Monday's
3
>>> last_rollover(friday_rollover + 86_400_000) == friday_rollover  # none on Saturday
True
"""

from __future__ import annotations

from typing import Final

from gtw_server.terminal.sim.account import Position
from gtw_server.terminal.sim.symbols import SymbolSpec
from protocol import mt5_constants as c

__all__ = ["last_rollover", "next_rollover", "nights", "swap_charge"]

_DAY_MS: Final = 86_400_000
_ROLLOVER_MS: Final = 22 * 3_600_000  # into the UTC day
_EPOCH_WEEKDAY: Final = 3  # 1970-01-01 was a Thursday (Monday = 0)
_WEDNESDAY: Final = 2
_TRADING_DAYS: Final = range(5)  # Monday to Friday end with a rollover


def _weekday(day: int) -> int:
    return (day + _EPOCH_WEEKDAY) % 7


def next_rollover(after_ms: int) -> int:
    """The first rollover strictly after ``after_ms`` (epoch milliseconds)."""
    day = (after_ms - _ROLLOVER_MS) // _DAY_MS + 1
    while _weekday(day) not in _TRADING_DAYS:
        day += 1
    return day * _DAY_MS + _ROLLOVER_MS


def last_rollover(at_ms: int) -> int:
    """The last rollover at or before ``at_ms``."""
    day = (at_ms - _ROLLOVER_MS) // _DAY_MS
    while _weekday(day) not in _TRADING_DAYS:
        day -= 1
    return day * _DAY_MS + _ROLLOVER_MS


def nights(rollover_ms: int) -> int:
    """How many nights the rollover at ``rollover_ms`` charges: three on Wednesday."""
    return 3 if _weekday(rollover_ms // _DAY_MS) == _WEDNESDAY else 1


def swap_charge(
    spec: SymbolSpec, position: Position, *, nights: int, point_value: float, digits: int
) -> float:
    """What one rollover of ``nights`` adds to ``position``'s swap, in the account currency;
    ``point_value`` is one point of one lot in that currency."""
    points = spec.swap_long if position.type == c.POSITION_TYPE_BUY else spec.swap_short
    return round(points * nights * position.volume * point_value, digits)
