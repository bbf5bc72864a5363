"""The simulated depth of market (``market_book_get``): five levels a side around the quote.

Retail FX servers rarely send real depth; the simulator builds a plausible one from the current
quote so that code reading the book works: the best ask and bid are the quote, further levels
are half a typical spread apart, and volumes (lots) vary with the tick. Levels are ordered as
the terminal orders them: by price, highest first, so sells come before buys.
"""

from __future__ import annotations

from typing import Final

from gtw_server.terminal.sim.prices import Quote
from gtw_server.terminal.sim.symbols import SymbolSpec
from protocol import mt5_constants as c
from protocol.mt5_structs import BookInfo

__all__ = ["DEPTH", "book"]

DEPTH: Final = 5


def book(spec: SymbolSpec, quote: Quote) -> tuple[BookInfo, ...]:
    """The book of ``spec`` at ``quote``."""
    step = max(1, spec.spread // 2) * spec.point
    sells = [(c.BOOK_TYPE_SELL, quote.ask + level * step, level) for level in range(DEPTH)]
    buys = [(c.BOOK_TYPE_BUY, quote.bid - level * step, DEPTH + level) for level in range(DEPTH)]
    return tuple(
        BookInfo((kind, round(price, spec.digits), lots, float(lots)))
        for kind, price, lots in (
            (kind, price, _lots(quote, index)) for kind, price, index in [*sells[::-1], *buys]
        )
    )


def _lots(quote: Quote, index: int) -> int:
    """A volume between 1 and 50 lots that changes from tick to tick (a multiplicative hash)."""
    return 1 + (quote.time_msc * 2_654_435_761 + index * 40_503) % 2**32 % 50
