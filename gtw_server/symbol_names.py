"""Symbol names across brokers: ``EURUSD`` here is ``EURUSD.m``, ``EURUSDpro`` or ``EURUSD#``
there. A strategy names the instrument; the gateway finds the broker's name for it.

A name the terminal does not know is resolved, in order, by the ``[gateway] symbols`` map, then
to the one symbol named as it plus a broker suffix: a separator and anything (``.m``,
``-ECN``, ``_i``, ``#``, ``+``), or a lower-case word (``pro``, ``m``, ``c2``). An
upper-case tail is not a suffix: ``GBP`` is not ``GBPUSD``. When several symbols carry the
name with a suffix, none is picked: the strategy must say which (``AmbiguousSymbol``).

>>> suffixed("EURUSD", ["EURUSD.m", "EURUSDpro", "EURUSDX", "GBPUSD", "EURUSD"])
['EURUSD.m', 'EURUSDpro']
>>> close_names("EURUSD", ["EURUSD.m", "GBPUSD", "XAUUSD"])
['EURUSD.m']
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["AmbiguousSymbol", "close_names", "same_symbol", "suffixed"]

# Brokers append a suffix to their symbols' names after one of these (EURUSD.m, US30-cash),
# or as a lower-case word (EURUSDm, EURUSDpro, EURUSDc2): never digits alone (US300 is not US30).
_SEPARATED: Final = re.compile(r"[.#_+!-].*")
_LOWER: Final = re.compile(r"[a-z][a-z0-9]{0,7}")
_SUGGESTIONS: Final = 3
# difflib's default cutoff (0.6) lets two pairs that share a currency pass (XAUUSD for EURUSDX).
_SIMILARITY: Final = 0.75


class AmbiguousSymbol(ValueError):
    """More than one of the broker's symbols is the name plus a suffix; ``candidates`` are
    their names."""

    def __init__(self, name: str, candidates: list[str]) -> None:
        super().__init__(
            f"{name!r} is not a symbol of this broker, and {len(candidates)} are it with a "
            f"suffix: {', '.join(candidates)}; name one (or map {name} in [gateway] symbols)"
        )
        self.candidates = candidates


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


def close_names(wanted: str, known: Iterable[str]) -> list[str]:
    """Up to three ``known`` names ``wanted`` may have meant, ignoring case: first the same
    name with another broker suffix (EURUSD.m for EURUSD, and the reverse), then the most
    similar ones (EURUSD for EURUSDX)."""
    by_upper = {name.upper(): name for name in known if name != wanted}
    target = wanted.upper()
    base = _base(target)
    same_base = [name for name in by_upper if base and _base(name) == base]
    same_base.sort(key=lambda name: -difflib.SequenceMatcher(None, target, name).ratio())
    similar = difflib.get_close_matches(target, by_upper, _SUGGESTIONS, _SIMILARITY)
    return [by_upper[name] for name in dict.fromkeys(same_base + similar)][:_SUGGESTIONS]


def _base(name: str) -> str:
    """The name before a broker's suffix: EURUSD for EURUSD.m; empty for #AAPL."""
    return _SEPARATED.sub("", name)
