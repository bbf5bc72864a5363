"""An order's numbers fitted to its symbol before ``order_send``: prices to the tick size,
volumes checked against the symbol's range and step, never guessed.

Brokers refuse a price that is not a whole number of ticks (a stop of 1.0849999999 on a
5-digit symbol is 10016 Invalid stops on one server, accepted on another), and float
arithmetic makes such prices all the time. So every price of a request (``price``,
``stoplimit``, ``sl``, ``tp``) goes out as the nearest whole number of ticks: a change of less
than half a tick, which the strategy cannot have meant. A volume is different: 0.123 lots on
a symbol that trades in steps of 0.01 could mean 0.12 or 0.13, so it is refused, naming the
symbol's minimum, maximum and step, unless the client asked for ``volume_rounding="down"``.

>>> terms = SymbolTerms(filling=0, volume_min=0.01, volume_max=100.0, volume_step=0.01,
...                     tick_size=0.00001, digits=5)
>>> fit_prices({"symbol": "EURUSD", "sl": 1.0849999999, "tp": 0.0}, terms)
({'symbol': 'EURUSD', 'sl': 1.085, 'tp': 0.0}, ['sl 1.0849999999 to 1.085'])
>>> fit_volume(0.123, terms, down=True)
0.12
"""

from __future__ import annotations

import math
from typing import Any, Final

from msgspec import Struct

__all__ = ["PRICE_KEYS", "SymbolTerms", "VolumeRefused", "fit_prices", "fit_volume", "lots"]

PRICE_KEYS: Final = ("price", "stoplimit", "sl", "tp")
# A volume this close to a whole number of steps is on the step: a ten-millionth of a step,
# or a double's own precision at that size (a fine step times many steps: 1e-8 lots x 10^9).
_STEP_TOLERANCE: Final = 1e-7
_RELATIVE_TOLERANCE: Final = 1e-12


class SymbolTerms(Struct, frozen=True, kw_only=True):
    """What an order for a symbol must respect: its filling mode, its volume limits (lots)
    and its price grid."""

    filling: int
    volume_min: float
    volume_max: float
    volume_step: float
    tick_size: float
    digits: int

    def describe(self, symbol: str) -> str:
        """``"EURUSD takes 0.01 to 100 lots in steps of 0.01"``."""
        return (
            f"{symbol} takes {lots(self.volume_min)} to {lots(self.volume_max)} lots "
            f"in steps of {lots(self.volume_step)}"
        )


class VolumeRefused(ValueError):
    """A volume the symbol does not take, and how to send one it does."""


def fit_prices(request: dict[str, Any], terms: SymbolTerms) -> tuple[dict[str, Any], list[str]]:
    """``request`` with each of its prices on the symbol's tick grid, and what changed
    (``["sl 1.0849999999 to 1.085"]``). 0 stays 0 (no level); a grid of 0 (a symbol
    that gives none) leaves the prices as they are."""
    if terms.tick_size <= 0:
        return request, []
    fitted, changes = dict(request), []
    for key in PRICE_KEYS:
        value = request.get(key)
        if not value or not math.isfinite(value):
            continue
        on_grid = round(round(value / terms.tick_size) * terms.tick_size, terms.digits)
        if on_grid != value:
            fitted[key] = on_grid
            changes.append(f"{key} {value!r} to {on_grid!r}")
    return fitted, changes


def fit_volume(volume: float, terms: SymbolTerms, *, down: bool) -> float:
    """``volume`` as the symbol takes it: itself when it is a whole number of steps within
    the range; with ``down``, the whole number of steps below it. Raises ``VolumeRefused``
    (a sentence with what to send instead, without the symbol's name) otherwise."""
    low, high, step = terms.volume_min, terms.volume_max, terms.volume_step
    slack = (step or low) * _STEP_TOLERANCE
    if volume < low - slack:
        raise VolumeRefused(f"{lots(volume)} lots is below the minimum of {lots(low)}")
    if volume > high + slack:
        raise VolumeRefused(f"{lots(volume)} lots is above the maximum of {lots(high)}")
    if step <= 0:
        return volume
    steps = volume / step
    tolerance = max(_STEP_TOLERANCE, abs(steps) * _RELATIVE_TOLERANCE)  # in steps
    if abs(steps - round(steps)) <= tolerance:
        return volume
    below = round(math.floor(steps) * step, 8)
    if down and below >= low - slack:
        return below
    if down:
        raise VolumeRefused(
            f"{lots(volume)} lots rounds down to {lots(below)}, below the minimum of {lots(low)}"
        )
    above = round(math.ceil(steps) * step, 8)
    near = " or ".join(lots(v) for v in (below, above) if low - slack <= v <= high + slack)
    raise VolumeRefused(
        f"{lots(volume)} lots is not a whole number of steps of {lots(step)}: send {near}, "
        'or ask for volume_rounding="down"'
    )


def lots(volume: float) -> str:
    """A volume as a trader writes it: ``0.1``, ``100``, never ``0.10000000``."""
    return f"{volume:.8f}".rstrip("0").rstrip(".")
