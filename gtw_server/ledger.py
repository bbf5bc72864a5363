"""The terminal's history as the second ledger: which order tags it holds.

Every order the gateway sends carries its uuid's tag at the start of its comment, so the
terminal's deal history is a record of what executed that no damage to the journal can
erase. At start (and whenever the terminal comes back before it was read) the gateway loads
the tags of the deals and active orders of the last ``history_lookback_hours``; from then on
it adds the tag of every order it sends itself. Before executing a uuid, the executor asks
``suspect``: a tag in the history whose owner the journal does not know may be this very
uuid, executed before the journal lost it, so it is looked up in the history instead of
being sent again.

A tag is 40 bits of the uuid's hash: another uuid's order can carry the same one. Tags that
the journal knows the owner of are never suspect, and a suspect one is answered from the
history only when the deal matches the request (symbol and side, or the position closed);
otherwise the order is refused as a duplicate, never executed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

__all__ = ["HistoryLedger"]


class HistoryLedger:
    """Tags seen in the terminal's recent history, each with its uuid when known."""

    def __init__(self, lookback_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self.lookback_s = lookback_s
        self._clock = clock
        self._owners: dict[str, str | None] = {}
        self._added: dict[str, float] = {}
        self.loaded_at: float | None = None  # None until the history has been read

    @property
    def loaded(self) -> bool:
        return self.loaded_at is not None

    @property
    def since(self) -> float:
        """The start of the window to read (epoch seconds)."""
        return self._clock() - self.lookback_s

    def load(self, history_tags: Iterable[str], known: Mapping[str, str]) -> None:
        """Take the tags read from the history; ``known`` maps the journal's own tags to
        their uuids."""
        now = self._clock()
        for tag in history_tags:
            owner = known.get(tag) or self._owners.get(tag)
            self._owners[tag] = owner
            self._added.setdefault(tag, now)
        self.loaded_at = now

    def unowned(self) -> int:
        """How many tags have no owner the journal knows."""
        return sum(owner is None for owner in self._owners.values())

    def claim(self, tag: str, uuid: str) -> None:
        """The gateway sent ``uuid``'s order with ``tag``: its owner is known from now on."""
        self._owners[tag] = uuid
        self._added[tag] = self._clock()

    def owner(self, tag: str) -> str | None:
        """The uuid of the request whose order carried ``tag``, when known."""
        return self._owners.get(tag)

    def suspect(self, tag: str, uuid: str) -> bool:
        """Whether an order with ``tag`` is in the history and may be ``uuid``'s own."""
        return tag in self._owners and self._owners[tag] in (None, uuid)

    def prune(self) -> int:
        """Forget tags added before the look-back window; returns how many."""
        cutoff = self._clock() - self.lookback_s
        old = [tag for tag, added in self._added.items() if added < cutoff]
        for tag in old:
            del self._owners[tag], self._added[tag]
        return len(old)
