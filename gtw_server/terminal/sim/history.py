"""Price history for ``copy_rates_*`` and ``copy_ticks_*``: numpy arrays, as the package returns.

numpy is not a dependency of the gateway; these functions need it and the terminal answers
None with ``last_error() == (-7, ...)`` naming it when it is missing.

The walk that moves the live quotes only goes forward, so the history is *synthesised*: a
random walk at the resolution asked for (one step per bar, or per 250 ms tick), drawn from a
generator keyed by the seed, the symbol, the timeframe and the bar's position on the time grid,
then run backwards from the live bid so that the last bar closes at it. The shape of a past
bar is therefore the same in every call; its level shifts with the live price. It is not the
path the live quotes took (a trade's price need not lie in the bar's range), and timeframes
are drawn independently of each other. The depth is ``TerminalInfo.maxbars`` bars and
``MAX_TICKS`` ticks back from now; an older window is empty. Bars and ticks exist only while
the symbol's market is open; monthly bars are 30-day bars on a fixed grid.

dtypes are those of the package (docs/MT5_API.md section 1), packed, 60 bytes an element.
"""

from __future__ import annotations

import importlib
import math
from hashlib import blake2b
from types import ModuleType
from typing import Any, Final

from gtw_server.terminal import constants as c
from gtw_server.terminal.sim.prices import TICK_MS, Quote
from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.symbols import SymbolSpec

__all__ = [
    "MAX_BARS",
    "MAX_TICKS",
    "RATES_DTYPE",
    "TICKS_DTYPE",
    "PriceHistory",
    "load_numpy",
    "timeframe_ms",
]

MAX_BARS: Final = 100_000  # TerminalInfo.maxbars
MAX_TICKS: Final = 100_000  # about 7 hours of 250 ms ticks
RATES_DTYPE: Final = [
    ("time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("tick_volume", "<u8"),
    ("spread", "<i4"),
    ("real_volume", "<u8"),
]
TICKS_DTYPE: Final = [
    ("time", "<i8"),
    ("bid", "<f8"),
    ("ask", "<f8"),
    ("last", "<f8"),
    ("volume", "<u8"),
    ("time_msc", "<i8"),
    ("flags", "<u4"),
    ("volume_real", "<f8"),
]
_YEAR_MS: Final = 365.25 * 86_400_000
_BLOCK: Final = 4096  # draws come in blocks keyed by their place on the grid
_MINUTES: Final = 0x4000  # TIMEFRAME_H* = 0x4000 | hours, W1 = 0x8000 | 1, MN1 = 0xC000 | 1
_WEEK_ORIGIN_MS: Final = 3 * 86_400_000  # weekly bars start on Sunday, as the epoch's was 3 days on


def load_numpy() -> ModuleType | None:
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


_MINUTE_FRAMES: Final = frozenset(
    {
        c.TIMEFRAME_M1,
        c.TIMEFRAME_M2,
        c.TIMEFRAME_M3,
        c.TIMEFRAME_M4,
        c.TIMEFRAME_M5,
        c.TIMEFRAME_M6,
        c.TIMEFRAME_M10,
        c.TIMEFRAME_M12,
        c.TIMEFRAME_M15,
        c.TIMEFRAME_M20,
        c.TIMEFRAME_M30,
    }
)
_HOUR_FRAMES: Final = frozenset(
    {
        c.TIMEFRAME_H1,
        c.TIMEFRAME_H2,
        c.TIMEFRAME_H3,
        c.TIMEFRAME_H4,
        c.TIMEFRAME_H6,
        c.TIMEFRAME_H8,
        c.TIMEFRAME_H12,
        c.TIMEFRAME_D1,
    }
)


def timeframe_ms(timeframe: object) -> int | None:
    """A ``TIMEFRAME_*`` constant's length in ms, or None for anything else."""
    if not isinstance(timeframe, int):
        return None
    if timeframe in _MINUTE_FRAMES:
        return timeframe * 60_000
    if timeframe in _HOUR_FRAMES:
        return (timeframe - _MINUTES) * 3_600_000
    if timeframe == c.TIMEFRAME_W1:
        return 7 * 86_400_000
    if timeframe == c.TIMEFRAME_MN1:
        return 30 * 86_400_000
    return None


class PriceHistory:
    """The synthetic history of every symbol, for one seed and one set of market hours."""

    def __init__(self, numpy: ModuleType, *, seed: int, sessions: Sessions) -> None:
        self._np = numpy
        self._seed = seed
        self._sessions = sessions

    def _draws(self, spec: SymbolSpec, grain_ms: int, first: int, last: int) -> Any:
        """Two standard normals per grid cell ``first..last`` (inclusive) of ``grain_ms``."""
        np = self._np
        parts = []
        for block in range(first // _BLOCK, last // _BLOCK + 1):
            name = f"{self._seed}/{spec.name}/{grain_ms}/{block}".encode()
            key = int.from_bytes(blake2b(name, digest_size=8).digest(), "big")
            parts.append(np.random.default_rng(key).standard_normal((_BLOCK, 2)))
        start = first - first // _BLOCK * _BLOCK
        return np.concatenate(parts)[start : start + last - first + 1]

    def _path(
        self, spec: SymbolSpec, grain_ms: int, first: int, last: int, end_price: float
    ) -> tuple[Any, Any, Any]:
        """Log prices at the end of cells ``first..last`` (the last one at ``end_price``),
        each cell's step, and a second draw per cell for the caller's own use."""
        np = self._np
        draws = self._draws(spec, grain_ms, first, last)
        steps = draws[:, 0] * spec.volatility * math.sqrt(grain_ms / _YEAR_MS)
        # Backwards from the end: a cell's close is the next one's less the next one's step.
        after = np.concatenate((np.cumsum(steps[:0:-1])[::-1], [0.0]))
        return math.log(end_price) - after, steps, draws[:, 1]

    def rates(self, spec: SymbolSpec, quote: Quote, length_ms: int, oldest_ms: int) -> Any:
        """The bars of ``length_ms`` that start at ``oldest_ms`` or later, up to the live one,
        oldest first (no more than ``MAX_BARS`` back)."""
        np = self._np
        origin = _WEEK_ORIGIN_MS if length_ms == 7 * 86_400_000 else 0
        last = (quote.time_msc - origin) // length_ms
        first = max(last - MAX_BARS + 1, -(-(oldest_ms - origin) // length_ms))
        if first > last:
            return np.zeros(0, dtype=RATES_DTYPE)
        starts = origin + np.arange(first, last + 1, dtype=np.int64) * length_ms
        closes, steps, other = self._path(spec, length_ms, first, last, quote.bid)
        opens = closes - steps
        wicks = np.abs(other) * spec.volatility * math.sqrt(length_ms / _YEAR_MS) / 2
        keep = self._open(spec, starts, length_ms)
        out = np.zeros(int(keep.sum()), dtype=RATES_DTYPE)
        open_, close = np.exp(opens[keep]), np.exp(closes[keep])
        out["time"] = starts[keep] // 1000
        out["open"] = np.round(open_, spec.digits)
        out["close"] = np.round(close, spec.digits)
        out["high"] = np.round(np.maximum(open_, close) * np.exp(wicks[keep]), spec.digits)
        out["low"] = np.round(np.minimum(open_, close) * np.exp(-wicks[keep]), spec.digits)
        ticks_per_bar = length_ms / TICK_MS
        out["tick_volume"] = (1 + np.abs(other[keep]) * ticks_per_bar / 4).astype(np.uint64)
        out["spread"] = spec.spread
        return out

    def ticks(
        self, spec: SymbolSpec, quote: Quote, date_from_ms: int, date_to_ms: int, count: int
    ) -> Any:
        """Ticks from ``date_from_ms`` to ``date_to_ms`` (both included), at most ``count``."""
        np = self._np
        last = quote.time_msc // TICK_MS
        first = max(date_from_ms // TICK_MS + (date_from_ms % TICK_MS > 0), last - MAX_TICKS + 1)
        end = min(date_to_ms // TICK_MS, last, first + count - 1)
        if end < first:
            return np.zeros(0, dtype=TICKS_DTYPE)
        levels, _, _ = self._path(spec, TICK_MS, first, last, (quote.bid + quote.ask) / 2)
        times = np.arange(first, last + 1, dtype=np.int64) * TICK_MS
        mask = (times <= end * TICK_MS) & self._open(spec, times, 1)
        half = spec.spread * spec.point / 2
        mids = np.exp(levels[mask])
        out = np.zeros(int(mask.sum()), dtype=TICKS_DTYPE)
        out["time_msc"] = times[mask]
        out["time"] = times[mask] // 1000
        out["bid"] = np.round(mids - half, spec.digits)
        out["ask"] = np.round(mids + half, spec.digits)
        out["flags"] = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
        return out

    def _open(self, spec: SymbolSpec, starts_ms: Any, length_ms: int) -> Any:
        """Which cells starting at ``starts_ms`` have any trading: all, if markets never
        close; otherwise those open at their start or just before their end."""
        np = self._np
        if self._sessions.always_open:
            return np.ones(len(starts_ms), dtype=bool)
        is_open = self._sessions.is_open
        return np.fromiter(
            (
                is_open(spec, int(start)) or is_open(spec, int(start) + length_ms - 1)
                for start in starts_ms
            ),
            dtype=bool,
            count=len(starts_ms),
        )
