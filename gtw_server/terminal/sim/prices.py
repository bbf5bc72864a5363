"""Simulated quotes: a seeded random walk per symbol, in discrete ticks on a fixed time grid.

Time is cut into ticks of ``TICK_MS``: tick ``k`` happens at ``k * TICK_MS`` ms after the
epoch. The move of a symbol on tick ``k`` is a pure function of ``(seed, symbol, k)`` (a
counter-based generator, not a stateful one), so the path depends only on the seed and on the
ticks that have passed, not on how often anyone looked: reading every second or once a
minute gives the same prices, and a terminal restarted from a stored ``(tick, level)`` replays
exactly the ticks it would have seen. Walks advance lazily, when a symbol is read.

The log of the mid price follows an Ornstein-Uhlenbeck process: a random walk with the
symbol's volatility and a weak pull (half-life 90 days) back to its reference price, so a demo
left running for months still shows believable prices. Its n-tick transition has a closed form,
so a gap longer than ``MAX_REPLAY_TICKS`` (a terminal stopped overnight, ``step(86400)``) is
crossed in one exact jump instead of millions of steps; only such jumps depend on when the
symbol is read. The spread of each tick varies within +-25% of the symbol's typical spread.

The broker also *scans* a path before moving along it (``PriceFeed.scan``): tick by tick, for
the first quote that triggers a pending order, a stop loss or a take profit, so they fire at
the tick that reached them, not wherever the next read happens to land. Outside a symbol's
trading sessions (``sessions``) its quote stays at the last tick before the close.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from hashlib import blake2b
from typing import Final, NamedTuple

from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.symbols import SymbolSpec

__all__ = ["MAX_REPLAY_TICKS", "TICK_MS", "PriceFeed", "Quote", "Scan"]

TICK_MS: Final = 250
_DAY_TICKS: Final = 86_400_000 // TICK_MS
# The daily rollover's thin minutes, in ticks of the UTC day: 21:55 to 22:15.
_ROLLOVER_FROM: Final = (21 * 3600 + 55 * 60) * 1000 // TICK_MS
_ROLLOVER_TO: Final = (22 * 3600 + 15 * 60) * 1000 // TICK_MS
MAX_REPLAY_TICKS: Final = 600  # 2.5 minutes of ticks, about 5 ms of work for every symbol

_TICK_S: Final = TICK_MS / 1000
_YEAR_S: Final = 365.25 * 86400
_REVERSION_PER_S: Final = math.log(2) / (90 * 86400)
_MASK64: Final = 2**64 - 1
_JUMP_SALT: Final = 0x6A09E667F3BCC909  # keeps a jump's draw apart from every tick's draw


def _mix64(counter: int) -> int:
    """The splitmix64 output function: a well-spread 64-bit hash of a counter."""
    z = (counter + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class Quote(NamedTuple):
    """A symbol's prices at one tick."""

    bid: float
    ask: float
    spread: int  # in points
    time_msc: int


class _Walk:
    """The price path of one symbol: its current tick, log mid price and quote."""

    __slots__ = (
        "_decay",
        "_key",
        "_mean",
        "_rollover_spread",
        "_sigma2",
        "_step_sd",
        "level",
        "quote",
        "spec",
        "tick",
    )

    def __init__(
        self, spec: SymbolSpec, seed: int, tick: int, level: float, rollover_spread: float = 1.0
    ) -> None:
        self._rollover_spread = rollover_spread
        digest = blake2b(f"{seed}/{spec.name}".encode(), digest_size=8).digest()
        self._key = int.from_bytes(digest, "big")
        self._mean = math.log(spec.price)
        self._sigma2 = spec.volatility**2 / _YEAR_S  # variance per second of the log price
        self._decay = math.exp(-_REVERSION_PER_S * _TICK_S)
        self._step_sd = self._sd(1)
        self.spec = spec
        self.tick = tick
        self.level = level
        self.quote = self._quote()

    def _sd(self, ticks: int) -> float:
        """Standard deviation of the log price ``ticks`` ticks ahead (OU transition)."""
        span = 2 * _REVERSION_PER_S * ticks * _TICK_S
        return math.sqrt(self._sigma2 * -math.expm1(-span) / (2 * _REVERSION_PER_S))

    def _normal(self, counter: int) -> float:
        """A standard normal draw for ``counter`` (Box-Muller on two hashed uniforms)."""
        u1 = ((_mix64((self._key + 2 * counter) & _MASK64) >> 11) + 1) * 2.0**-53  # (0, 1]
        u2 = (_mix64((self._key + 2 * counter + 1) & _MASK64) >> 11) * 2.0**-53
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def _levels(self, until: int) -> Iterator[tuple[int, float]]:
        """The ticks after the current one up to ``until``, with their levels: each tick, or
        one exact jump to ``until`` when that is more than ``MAX_REPLAY_TICKS`` away."""
        ticks = until - self.tick
        mean, level = self._mean, self.level
        if ticks > MAX_REPLAY_TICKS:
            decay = self._decay**ticks
            noise = self._sd(ticks) * self._normal(until ^ _JUMP_SALT)
            yield until, mean + (level - mean) * decay + noise
            return
        decay, step_sd = self._decay, self._step_sd
        for k in range(self.tick + 1, until + 1):
            level = mean + (level - mean) * decay + step_sd * self._normal(k)
            yield k, level

    def advance_to(self, tick: int) -> None:
        """Moves to ``tick``; never backwards (a terminal restarted after one that was stepped
        ahead keeps the later price)."""
        for moved in self._levels(tick):
            self.tick, self.level = moved
        self.quote = self._quote()

    def scan(self, until: int, fires: Callable[[Quote], bool]) -> Scan:
        """The path up to ``until`` as far as the first quote for which ``fires`` is true,
        without moving: ``move(scan)`` commits to it."""
        tick, level, quote = self.tick, self.level, self.quote
        for tick, level in self._levels(until):
            quote = self._quote_at(tick, level)
            if fires(quote):
                return Scan(tick, level, quote, fired=True)
        return Scan(tick, level, quote, fired=False)

    def move(self, scan: Scan) -> None:
        self.tick, self.level, self.quote = scan.tick, scan.level, scan.quote

    def _quote(self) -> Quote:
        return self._quote_at(self.tick, self.level)

    def _quote_at(self, tick: int, level: float) -> Quote:
        spec = self.spec
        # The low bits of the tick's first hash, unused by its normal draw, pick the spread.
        uniform = (_mix64((self._key + 2 * tick) & _MASK64) & 0x3FF) / 1024
        spread = max(1, round(spec.spread * (0.75 + 0.5 * uniform)))
        if self._rollover_spread != 1.0 and _ROLLOVER_FROM <= tick % _DAY_TICKS < _ROLLOVER_TO:
            spread = round(spread * self._rollover_spread)  # thin liquidity at the day's end
        bid_points = round(math.exp(level) / spec.point - spread / 2)
        return Quote(
            round(bid_points * spec.point, spec.digits),
            round((bid_points + spread) * spec.point, spec.digits),
            spread,
            tick * TICK_MS,
        )


class Scan(NamedTuple):
    """Where a scan of the path stopped: the first quote that fired, or the end."""

    tick: int
    level: float
    quote: Quote
    fired: bool


class PriceFeed:
    """The quotes of every symbol, moved to the feed's time when a symbol is read.

    ``stored`` maps a symbol to the ``(tick, level)`` it had when it was last persisted
    (``unsaved()``); a symbol without one starts at its reference price at ``now_ms``. Outside
    a symbol's trading sessions its quote stays at the last tick before the close.
    """

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        seed: int,
        now_ms: int,
        stored: Mapping[str, tuple[int, float]],
        sessions: Sessions,
        rollover_spread: float = 1.0,
    ) -> None:
        """``rollover_spread`` widens the spread around the daily rollover (``SimConfig``)."""
        self._sessions = sessions
        self._now_ms = now_ms
        self._tick = now_ms // TICK_MS
        self._targets: dict[str, int] = {}  # each symbol's tick at _now_ms, once computed
        self._walks = {
            spec.name: _Walk(
                spec,
                seed,
                *stored.get(spec.name, (self._tick, math.log(spec.price))),
                rollover_spread,
            )
            for spec in specs
        }
        # Each symbol's tick as last persisted: only the symbols that moved since are written.
        self._saved = {name: tick for name, (tick, _) in stored.items()}

    def at(self, now_ms: int) -> None:
        """Sets the feed's time; quotes move there when read."""
        if now_ms != self._now_ms:
            self._now_ms, self._tick = now_ms, now_ms // TICK_MS
            self._targets.clear()

    def _target(self, walk: _Walk) -> int:
        """The tick ``walk`` should show now: the feed's, or its market's last before now."""
        if self._sessions.always_open:
            return self._tick
        target = self._targets.get(walk.spec.name)
        if target is None:
            target = self._sessions.last_open_ms(walk.spec, self._now_ms) // TICK_MS
            self._targets[walk.spec.name] = target
        return target

    def quote(self, symbol: str) -> Quote:
        walk = self._walks[symbol]
        if walk.tick < (target := self._target(walk)):
            walk.advance_to(target)
        return walk.quote

    def scan(self, symbol: str, until_ms: int, fires: Callable[[Quote], bool]) -> Scan:
        """``symbol``'s path from its current tick up to ``until_ms`` (the feed's time or
        later), as far as the first trading tick whose quote ``fires``; nothing moves."""
        walk = self._walks[symbol]
        until = self._sessions.last_open_ms(walk.spec, until_ms) // TICK_MS
        return walk.scan(until, fires)

    def move(self, symbol: str, scan: Scan) -> None:
        """Moves ``symbol`` to where ``scan`` stopped."""
        self._walks[symbol].move(scan)

    def unsaved(self) -> list[tuple[str, int, float]]:
        """``(symbol, tick, level)`` of every walk that moved since ``saved``, as ``stored``
        takes them back. An order usually moves one symbol: writing the others every time
        was most of a commit."""
        saved = self._saved
        return [
            (name, walk.tick, walk.level)
            for name, walk in self._walks.items()
            if saved.get(name) != walk.tick
        ]

    def saved(self, rows: Iterable[tuple[str, int, float]]) -> None:
        """Notes that ``rows`` (from ``unsaved``) were persisted."""
        self._saved.update((name, tick) for name, tick, _ in rows)
