"""The gateway's side of symbol names across brokers (the rule is ``protocol.symbol_names``'s):
a name with several suffixed symbols is ambiguous, and an unknown one gets close names.

A strategy names the instrument; ``TerminalAdapter.resolve`` finds the broker's name for it:
the ``[gateway] symbols`` map's, else the name when the terminal knows it, else the one
symbol that is it plus a suffix. When several are, none is picked: the strategy must say
which (``AmbiguousSymbol``).

>>> close_names("EURUSD", ["EURUSD.m", "GBPUSD", "XAUUSD"])
['EURUSD.m']
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

from protocol.symbol_names import base_name

__all__ = ["AmbiguousSymbol", "close_names"]

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


def close_names(wanted: str, known: Iterable[str]) -> list[str]:
    """Up to three ``known`` names ``wanted`` may have meant, ignoring case: first the same
    name with another broker suffix (EURUSD.m for EURUSD, and the reverse), then the most
    similar ones (EURUSD for EURUSDX)."""
    by_upper = {name.upper(): name for name in known if name != wanted}
    target = wanted.upper()
    base = base_name(target)
    same_base = [name for name in by_upper if base and base_name(name) == base]
    same_base.sort(key=lambda name: -difflib.SequenceMatcher(None, target, name).ratio())
    similar = difflib.get_close_matches(target, by_upper, _SUGGESTIONS, _SIMILARITY)
    return [by_upper[name] for name in dict.fromkeys(same_base + similar)][:_SUGGESTIONS]
