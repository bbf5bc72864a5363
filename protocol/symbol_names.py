"""Symbol names across brokers: ``EURUSD`` here is ``EURUSD.m``, ``EURUSDpro`` or ``EURUSD#``
there (docs/PROTOCOL.md, "Symbol names"). The gateway resolves a name to the broker's by this
rule; the client books its risk by it.

A suffix is a separator and anything (``.m``, ``-ECN``, ``_i``, ``#``, ``+``), or a lower-case
word (``pro``, ``m``, ``c2``). An upper-case tail is not a suffix: ``GBP`` is not ``GBPUSD``;
nor are digits alone: ``US30`` is not ``US300``.

>>> suffixed("EURUSD", ["EURUSD.m", "EURUSDpro", "EURUSDX", "GBPUSD", "EURUSD"])
['EURUSD.m', 'EURUSDpro']
>>> base_name("EURUSD.m"), base_name("#AAPL")
('EURUSD', '')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["base_name", "same_symbol", "suffixed"]

# Brokers append a suffix to their symbols' names after one of these (EURUSD.m, US30-cash),
# or as a lower-case word (EURUSDm, EURUSDpro, EURUSDc2): never digits alone (US300 is not US30).
_SEPARATED: Final = re.compile(r"[.#_+!-].*")
_LOWER: Final = re.compile(r"[a-z][a-z0-9]{0,7}")


def suffixed(name: str, known: Iterable[str]) -> list[str]:
    """The ``known`` names that are ``name`` plus a broker suffix, in their order."""
    return [
        other
        for other in known
        if other.startswith(name)
        and len(other) > len(name)
        and (_SEPARATED.fullmatch(tail := other[len(name) :]) or _LOWER.fullmatch(tail))
    ]


def same_symbol(asked: str, found: str, mapped: Mapping[str, str]) -> bool:
    """Whether the broker's symbol ``found`` is what a request naming ``asked`` trades: the
    name itself, its ``[gateway] symbols`` entry, or (when it has none) it plus a suffix."""
    if asked in mapped:
        return found == mapped[asked]
    return found == asked or bool(suffixed(asked, [found]))


def base_name(name: str) -> str:
    """The name before a broker's separated suffix: EURUSD for EURUSD.m; empty for #AAPL."""
    return _SEPARATED.sub("", name)
