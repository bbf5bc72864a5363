"""Each symbol's one stream of ticks, and its bars: where every price the simulator shows is from.

A ``Tape`` answers three questions about one symbol, at any time, past or future, the same way
every time: its hour bars, its minute bars, and the ticks of one minute. Everything else is
derived from them by ``history`` (the bars of every timeframe, the ticks of a range) and
``prices`` (the live quote, the scans for triggers), so a bar of any timeframe is the
aggregate of the ticks inside it, and a tick shown live is a tick of the history.

Prices are integers here, in points (the bid), so that aggregation is exact; ``spread`` is in
points and ``time`` in epoch milliseconds. A bar's ``spread`` is the smallest of its ticks',
its ``ticks`` their count (MetaTrader's tick volume).

``SyntheticTape`` makes the stream up, from the seed alone, top down, so that no level needs
the one below it to exist:

1. *Days.* The log price at each UTC midnight since ``ORIGIN_DAY`` (2000-01-01) follows an
   Ornstein-Uhlenbeck process around the symbol's reference price (half-life 90 days): the
   levels stay believable for decades.
2. *Hours.* Between two midnights, a Brownian bridge through the 24 hours, each hour's
   variance weighted by its activity: quiet Asian hours, busy London and New York, and a
   closed market barely moving (so it reopens with a gap). An hour's bar opens where the
   previous hour ended and closes where it ends; its high and low are drawn from the exact
   law of a Brownian bridge's maximum and minimum.
3. *Minutes.* Inside an hour, a random walk pinned to the hour's open, high, low and close
   (the high and low at random minutes), then clipped to the hour's range: the minutes'
   extremes are the hour's, their first open and last close are the hour's, their tick counts
   sum to the hour's. The same construction makes the ticks of a minute from its bar.

Only trading hours have bars and ticks; sessions must start and end on whole hours (every
symbol of ``symbols`` does).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Any, Final

import numpy as np

from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.symbols import SymbolSpec

__all__ = [
    "BAR",
    "HOUR_MS",
    "MINUTE_MS",
    "MIN_TICKS",
    "ORIGIN_DAY",
    "TICK",
    "SyntheticTape",
    "Tape",
    "aggregate",
    "between",
    "concat_bars",
    "kept",
    "pinned",
    "step_sd",
    "synthetic_tapes",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
ORIGIN_DAY: Final = 10_957  # 2000-01-01, the first day of the synthetic history
MIN_TICKS: Final = 4  # ticks in a trading minute at least: room for its open, high, low, close

BAR: Final = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<i8"),
        ("high", "<i8"),
        ("low", "<i8"),
        ("close", "<i8"),
        ("ticks", "<i8"),
        ("spread", "<i8"),
    ]
)
TICK: Final = np.dtype([("time", "<i8"), ("bid", "<i8"), ("spread", "<i8")])

_YEAR_HOURS: Final = 365.25 * 24
_REVERSION_PER_DAY: Final = math.log(2) / 90
_EPOCH_HOUR_OF_WEEK: Final = 96  # the epoch was a Thursday: 96 hours after Sunday 00:00
# Activity by UTC hour of the day: volatility (as variance) and ticks follow it.
_ACTIVITY: Final = np.array(
    [0.6] * 7  # 00-07 Asia
    + [1.3] * 5  # 07-12 London
    + [1.8] * 4  # 12-16 London and New York
    + [1.0] * 5  # 16-21 New York
    + [0.5] * 3  # 21-24 the rollover's thin hours
)
_CLOSED_ACTIVITY: Final = 0.08  # news moves a closed market a little: the reopening gaps
_TICKS_PER_ACTIVITY: Final = 30  # ticks per minute at activity 1.0 (on top of MIN_TICKS)
_BLOCK: Final = 1024  # draws come in blocks keyed by their place on the grid
_KEPT: Final = 4096  # days of hour bars, minutes of ticks kept per symbol
# Hours of minute bars kept per symbol: a chart's 100,000 M1 bars of a symbol that trades 14
# hours of a weekday (some 4,000 hours back, and the reading window's margin), 21 MB at most.
_MINUTE_HOURS_KEPT: Final = 6144
# The daily rollover's thin minutes (spreads widen): 21:55 to 22:15 UTC.
_ROLLOVER_FROM: Final = 21 * 60 + 55
_ROLLOVER_TO: Final = 22 * 60 + 15


def _rollover_minute(minutes: Any) -> Any:
    """Which minutes (since the epoch) fall in the rollover's thin 20 minutes."""
    of_day = minutes % 1440
    return (of_day >= _ROLLOVER_FROM) & (of_day < _ROLLOVER_TO)


class Tape(ABC):
    """One symbol's stream of ticks, at three resolutions that agree exactly."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec

    @abstractmethod
    def hours(self, first: int, last: int) -> Any:
        """The ``BAR`` rows of the trading hours ``first..last`` (hours since the epoch)."""

    @abstractmethod
    def minutes(self, first: int, last: int) -> Any:
        """The ``BAR`` rows of the trading minutes ``first..last`` (minutes since the epoch)."""

    @abstractmethod
    def ticks_of(self, minute: int) -> Any:
        """The ``TICK`` rows of one minute (none if it has no trading)."""

    @abstractmethod
    def last_trading_ms(self, at_ms: int) -> int:
        """``at_ms`` if the symbol may have ticks then, else the last moment before that it
        traded (the end of the previous session, of the data)."""

    @abstractmethod
    def spread_cap(self) -> int:
        """No tick's spread is wider than this (points): scans skip bars by it."""


class SyntheticTape(Tape):
    """The stream of ticks of one symbol, made up from ``seed``; ``rollover_spread`` widens
    the spread in the rollover's minutes. ``market`` names what the prices are drawn for
    (the symbol's name without a broker's suffix: ``EURUSD.m`` moves as ``EURUSD``)."""

    def __init__(
        self,
        spec: SymbolSpec,
        *,
        seed: int,
        sessions: Sessions,
        rollover_spread: float = 1.0,
        market: str | None = None,
    ) -> None:
        super().__init__(spec)
        self._sessions = sessions
        self._key = f"{seed}/{market or spec.name}"
        self._mean = math.log(spec.price)
        hours = np.arange(168)
        week_start = 3 * DAY_MS  # a Sunday 00:00 UTC
        self._open = np.array(
            [sessions.is_open(spec, week_start + hour * HOUR_MS) for hour in range(168)]
        )
        self._weights = np.where(self._open, _ACTIVITY[hours % 24], _CLOSED_ACTIVITY)
        # Variance of the log price per unit of weight: a week's adds up to the symbol's.
        self._unit_var = spec.volatility**2 / _YEAR_HOURS * 168 / float(self._weights.sum())
        self._anchors = np.array([self._mean])  # log price at each midnight from ORIGIN_DAY
        self._spread = max(1, round(0.75 * spec.spread))  # the narrowest: every hour's spread
        self._extra = max(1, spec.spread // 2)  # a minute's and a tick's spread vary this much
        self._rollover = rollover_spread
        self._cap = math.ceil((self._spread + 2 * self._extra) * max(1.0, rollover_spread)) + 1
        self._hour_cache: dict[int, Any] = {}  # day -> its 24 hour bars (all, closed too)
        self._minute_cache: dict[int, Any] = {}  # hour -> its 60 minute bars
        self._tick_cache: dict[int, Any] = {}  # minute -> its ticks

    def spread_cap(self) -> int:
        return self._cap

    # -- draws ------------------------------------------------------------------------------

    def _draws(self, level: str, first: int, last: int, width: int) -> Any:
        """``width`` draws per cell ``first..last`` of ``level``, the same for a cell whatever
        range it is drawn in: a standard normal, then uniforms in [0, 1)."""
        parts = []
        for block in range(first // _BLOCK, last // _BLOCK + 1):
            rng = self._cell_rng(level, block)
            cells = rng.random((_BLOCK, width))
            cells[:, 0] = rng.standard_normal(_BLOCK)
            parts.append(cells)
        start = first - first // _BLOCK * _BLOCK
        return np.concatenate(parts)[start : start + last - first + 1]

    def _cell_rng(self, level: str, cell: int) -> np.random.Generator:
        name = f"{self._key}/{level}/{cell}".encode()
        return np.random.default_rng(int.from_bytes(blake2b(name, digest_size=8).digest(), "big"))

    # -- days and hours ---------------------------------------------------------------------

    def _anchor_levels(self, last_day: int) -> Any:
        """The log price at each midnight from ``ORIGIN_DAY`` to ``last_day``."""
        have = len(self._anchors)
        need = last_day - ORIGIN_DAY + 1
        if need > have:
            need = max(need, have + 366)  # a year at a time: the loop runs once in a while
            days = np.arange(ORIGIN_DAY + have - 1, ORIGIN_DAY + need - 1)
            how = (days[:, None] * 24 + np.arange(24) + _EPOCH_HOUR_OF_WEEK) % 168
            sd = np.sqrt(self._unit_var * self._weights[how].sum(axis=1))
            noise = sd * self._draws("day", int(days[0]), int(days[-1]), 1)[:, 0]
            decay = math.exp(-_REVERSION_PER_DAY)
            levels = list(self._anchors)
            level, mean = levels[-1], self._mean
            for step in noise.tolist():
                level = mean + (level - mean) * decay + step
                levels.append(level)
            self._anchors = np.array(levels)
        return self._anchors[: last_day - ORIGIN_DAY + 1]

    def _day(self, day: int) -> Any:
        """The 24 hour bars of ``day`` (closed hours too; the caller drops them)."""
        return kept(self._hour_cache, day, lambda: self._days(day, day))

    def _days(self, first_day: int, last_day: int) -> Any:
        """The hour bars of whole days, vectorised: a Brownian bridge between midnights."""
        anchors = self._anchor_levels(last_day + 1)
        days = np.arange(first_day, last_day + 1)
        hours = days[:, None] * 24 + np.arange(24)
        weights = self._weights[(hours + _EPOCH_HOUR_OF_WEEK) % 168]
        draws = self._draws("hour", int(hours[0, 0]), int(hours[-1, -1]), 4)
        draws = draws.reshape(len(days), 24, 4)
        walk = np.cumsum(np.sqrt(self._unit_var * weights) * draws[..., 0], axis=1)
        share = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)
        start = anchors[days - ORIGIN_DAY]
        end = anchors[days - ORIGIN_DAY + 1]
        closes = start[:, None] + walk - share * (walk[:, -1:] - (end - start)[:, None])
        opens = np.concatenate((start[:, None], closes[:, :-1]), axis=1)
        point = self.spec.point
        open_ = np.rint(np.exp(opens) / point).astype(np.int64).ravel()
        close = np.rint(np.exp(closes) / point).astype(np.int64).ravel()
        sd = np.exp(closes).ravel() / point * np.sqrt(self._unit_var * weights).ravel()
        high, low = _extremes(open_, close, sd**2, draws[..., 1].ravel(), draws[..., 2].ravel())
        activity = weights.ravel()
        extra = 60 * _TICKS_PER_ACTIVITY * activity * np.exp(0.6 * draws[..., 3].ravel() - 0.3)
        rows = np.zeros(hours.size, dtype=BAR)
        rows["time"] = hours.ravel() * HOUR_MS
        rows["open"], rows["high"], rows["low"], rows["close"] = open_, high, low, close
        rows["ticks"] = 60 * MIN_TICKS + np.rint(extra).astype(np.int64)
        rows["spread"] = self._spread
        return rows

    def _trading(self, hour_indices: Any) -> Any:
        return self._open[(hour_indices + _EPOCH_HOUR_OF_WEEK) % 168]

    def hours(self, first: int, last: int) -> Any:
        first = max(first, ORIGIN_DAY * 24)
        if last < first:
            return np.zeros(0, dtype=BAR)
        first_day, last_day = first // 24, last // 24
        # One day is what the live quotes ask for, again and again: it is cached.
        one = first_day == last_day
        rows = self._day(first_day) if one else self._days(first_day, last_day)
        rows = between(rows, first * HOUR_MS, last * HOUR_MS)
        return rows[self._trading(rows["time"] // HOUR_MS)]

    # -- minutes and ticks ------------------------------------------------------------------

    def _hours_minutes(self, first_hour: int, last_hour: int) -> Any:
        """The minute bars of the hours ``first_hour..last_hour``, kept per hour: the live
        reads ask for the same hours again and again, the bars of a chart for most of them.
        The hours not kept yet are made in one vectorised pass."""
        cache = self._minute_cache
        hours = range(first_hour, last_hour + 1)
        missing = [hour for hour in hours if hour not in cache]
        if missing:
            if len(cache) + len(missing) > _MINUTE_HOURS_KEPT:
                cache.clear()
                missing = list(hours)
            made = self._minutes_of(self.hours(missing[0], missing[-1]))
            by_hour = made["time"] // HOUR_MS
            starts = np.searchsorted(by_hour, np.array(missing), side="left")
            ends = np.searchsorted(by_hour, np.array(missing), side="right")
            for hour, start, end in zip(missing, starts.tolist(), ends.tolist(), strict=True):
                cache[hour] = made[start:end]
        return concat_bars([cache[hour] for hour in hours])

    def _minutes_of(self, hours: Any) -> Any:
        """The minute bars of these hour bars, 60 each."""
        count = len(hours)
        if not count:
            return np.zeros(0, dtype=BAR)
        first = int(hours["time"][0] // MINUTE_MS)
        last = int(hours["time"][-1] // MINUTE_MS) + 59
        starts = hours["time"] // MINUTE_MS
        cells = self._draws("minute", first, last, 4)[(starts - first)[:, None] + np.arange(60)]
        index = starts[:, None] + np.arange(60)
        bars = np.zeros((count, 60), dtype=BAR)
        bars["time"] = index * MINUTE_MS
        _children(hours, cells, bars)
        bars["ticks"] = _split(hours["ticks"], cells[..., 3])
        extra = np.floor(cells[..., 2] * (self._extra + 1)).astype(np.int64)
        thin = _rollover_minute(index)
        # One minute an hour, not a thin one, has the hour's spread.
        narrowest = np.argmin(np.where(thin, 2.0, cells[..., 2]), axis=1)
        extra[np.arange(count), narrowest] = 0
        spread = hours["spread"][:, None] + extra
        bars["spread"] = np.where(thin, np.ceil(spread * self._rollover), spread)
        return bars.ravel()

    def minutes(self, first: int, last: int) -> Any:
        first = max(first, ORIGIN_DAY * 1440)
        if last < first:
            return np.zeros(0, dtype=BAR)
        first_hour, last_hour = first // 60, last // 60
        if last_hour - first_hour < _MINUTE_HOURS_KEPT:
            rows = self._hours_minutes(first_hour, last_hour)
        else:
            rows = self._minutes_of(self.hours(first_hour, last_hour))
        return between(rows, first * MINUTE_MS, last * MINUTE_MS)

    def ticks_of(self, minute: int) -> Any:
        def make() -> Any:
            bars = self.minutes(minute, minute)
            return self._ticks(bars, minute) if len(bars) else np.zeros(0, dtype=TICK)

        return kept(self._tick_cache, minute, make)

    def _ticks(self, bar: Any, minute: int) -> Any:
        """The ticks of a minute (``bar``, one row): first at its open, last at its close,
        its high and low on the way, its spread the smallest."""
        count = int(bar["ticks"][0])
        rng = self._cell_rng("ticks", minute)
        cells = rng.random((count, 3))
        cells[:, 0] = rng.standard_normal(count)
        rows = np.zeros(count, dtype=TICK)
        offsets = np.sort(rng.choice(MINUTE_MS, size=count, replace=False))
        rows["time"] = minute * MINUTE_MS + offsets
        sd = step_sd(int(bar["high"][0]), int(bar["low"][0]), count)
        rows["bid"] = pinned(bar, sd * cells[None, 1:, 0], cells[:1, 1])[0]
        extra = np.floor(cells[:, 2] * (self._extra + 1)).astype(np.int64)
        extra[np.argmin(cells[:, 2])] = 0
        rows["spread"] = int(bar["spread"][0]) + extra
        return rows

    def last_trading_ms(self, at_ms: int) -> int:
        return self._sessions.last_open_ms(self.spec, at_ms)


def aggregate(rows: Any, starts: Any) -> Any:
    """One ``BAR`` per run of equal ``starts`` in ``rows`` (``BAR`` or ``TICK`` rows, in time
    order): open is the first, close the last, the extremes, the ticks summed, the narrowest
    spread."""
    out = np.zeros(0, dtype=BAR)
    if not len(rows):
        return out
    starts = np.broadcast_to(np.asarray(starts, dtype=np.int64), (len(rows),))
    firsts = np.flatnonzero(np.concatenate(([True], starts[1:] != starts[:-1])))
    lasts = np.concatenate((firsts[1:], [len(rows)])) - 1
    ticks = rows.dtype == TICK
    high = rows["bid"] if ticks else rows["high"]
    low = rows["bid"] if ticks else rows["low"]
    out = np.zeros(len(firsts), dtype=BAR)
    out["time"] = starts[firsts]
    out["open"] = rows["bid" if ticks else "open"][firsts]
    out["close"] = rows["bid" if ticks else "close"][lasts]
    out["high"] = np.maximum.reduceat(high, firsts)
    out["low"] = np.minimum.reduceat(low, firsts)
    out["ticks"] = lasts - firsts + 1 if ticks else np.add.reduceat(rows["ticks"], firsts)
    out["spread"] = np.minimum.reduceat(rows["spread"], firsts)
    return out


def kept(cache: dict[int, Any], key: int, make: Callable[[], Any]) -> Any:
    """``cache[key]``, made by ``make`` the first time; a full cache is emptied (the live
    reads come back for the last few keys, which are soon made again)."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _KEPT:
            cache.clear()
        found = cache[key] = make()
    return found


def between(rows: Any, first_ms: int, last_ms: int) -> Any:
    """The rows (in time order) from ``first_ms`` to ``last_ms``, both included: a view."""
    times = rows["time"]
    return rows[np.searchsorted(times, first_ms) : np.searchsorted(times, last_ms, side="right")]


def concat_bars(parts: list[Any]) -> Any:
    """``np.concatenate`` of ``BAR`` arrays, as plain integers: numpy compares the fields of
    every structured part first, which cost most of a 100,000-bar read."""
    if not parts:
        return np.zeros(0, dtype=BAR)
    width = len(BAR.names or ())
    flat = np.concatenate([part.view(np.int64).reshape(-1, width) for part in parts])
    return flat.view(BAR).reshape(-1)


def _extremes(open_: Any, close: Any, variance: Any, u_high: Any, u_low: Any) -> tuple[Any, Any]:
    """Highs and lows of Brownian bridges from ``open_`` to ``close`` (points) with this
    ``variance``, by the exact law of a bridge's maximum (and minimum)."""
    open_f, close_f = open_.astype(float), close.astype(float)
    gap = (close_f - open_f) ** 2
    up = np.sqrt(gap - 2 * variance * np.log1p(-u_high))
    down = np.sqrt(gap - 2 * variance * np.log1p(-u_low))
    high = np.ceil((open_f + close_f + up) / 2).astype(np.int64)
    low = np.floor((open_f + close_f - down) / 2).astype(np.int64)
    return np.maximum(high, np.maximum(open_, close)), np.minimum(low, np.minimum(open_, close))


def _children(parents: Any, cells: Any, bars: Any) -> None:
    """Opens, highs, lows and closes of the parts (``bars``, a row per parent) of
    ``parents``."""
    parts = bars.shape[1]
    high, low = parents["high"][:, None], parents["low"][:, None]
    sd = step_sd(high, low, parts)
    path = pinned(parents, sd * cells[..., 0], cells[:, 0, 1])
    bars["open"], bars["close"] = path[:, :-1], path[:, 1:]
    up, down = _extremes(bars["open"], bars["close"], sd**2, cells[..., 1], cells[..., 2])
    bars["high"] = np.minimum(up, high)
    bars["low"] = np.maximum(down, low)


def step_sd(high: Any, low: Any, steps: int) -> Any:
    """The standard deviation of each of ``steps`` steps of a walk across a bar from ``low`` to
    ``high`` (points): the range is about 1.6 of the whole walk's."""
    return np.maximum(high - low, 1) / math.sqrt(2.5 * steps)


def pinned(bars: Any, steps: Any, where: Any) -> Any:
    """A path of integer points per bar of ``bars``, ``steps.shape[1] + 1`` long, from its
    open to its close, reaching its high and low and staying between them: a walk of
    ``steps`` pinned there, then clipped.

    The high and low are reached at two different inner points (``where``, in [0, 1), picks
    them); a high or low that is the open or the close needs no inner point.
    """
    rows, count = steps.shape
    open_, high = bars["open"][:, None], bars["high"][:, None]
    low, close = bars["low"][:, None], bars["close"][:, None]
    inner = count - 1  # points 1 .. count - 1; at least 2 (MIN_TICKS)
    at_high = (where * inner).astype(np.int64)
    at_low = (at_high + 1 + (where * 1e6).astype(np.int64) % (inner - 1)) % inner
    # Four knots a row; a knot not needed sits on the open, where it changes nothing.
    wick_up = high[:, 0] > np.maximum(open_, close)[:, 0]
    wick_down = low[:, 0] < np.minimum(open_, close)[:, 0]
    times = np.stack(
        (
            np.zeros(rows, np.int64),
            np.where(wick_up, 1 + at_high, 0),
            np.where(wick_down, 1 + at_low, 0),
            np.full(rows, count),
        ),
        axis=1,
    )
    values = np.stack(
        (
            open_[:, 0],
            np.where(wick_up, high[:, 0], open_[:, 0]),
            np.where(wick_down, low[:, 0], open_[:, 0]),
            close[:, 0],
        ),
        axis=1,
    ).astype(float)
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    walk = np.concatenate((np.zeros((rows, 1)), np.cumsum(steps, axis=1)), axis=1)
    # The walk minus the straight lines through its misses at the knots: pinned bridges.
    miss = np.take_along_axis(walk, times, axis=1) - values
    grid = np.arange(count + 1)
    segment = np.clip((times[:, :, None] <= grid).sum(axis=1) - 1, 0, 2)
    t0 = np.take_along_axis(times, segment, axis=1)
    t1 = np.take_along_axis(times, segment + 1, axis=1)
    m0 = np.take_along_axis(miss, segment, axis=1)
    m1 = np.take_along_axis(miss, segment + 1, axis=1)
    share = np.where(t1 > t0, (grid - t0) / np.maximum(t1 - t0, 1), 0.0)
    path = np.clip(np.rint(walk - m0 - share * (m1 - m0)), low, high).astype(np.int64)
    np.put_along_axis(path, times, np.rint(values).astype(np.int64), axis=1)
    return path


def _split(totals: Any, uniforms: Any) -> Any:
    """Shares each of ``totals`` ticks among its row of parts: each gets ``MIN_TICKS``, the
    rest by weight, to the largest remainders."""
    weights = np.exp(1.2 * uniforms)
    rest = totals - MIN_TICKS * uniforms.shape[1]
    shares = weights / weights.sum(axis=1, keepdims=True) * rest[:, None]
    ticks = np.floor(shares).astype(np.int64)
    short = rest - ticks.sum(axis=1)
    rank = np.argsort(np.argsort(ticks - shares, axis=1), axis=1)
    return MIN_TICKS + ticks + (rank < short[:, None])


def synthetic_tapes(
    specs: Iterable[SymbolSpec],
    *,
    seed: int,
    sessions: Sessions,
    rollover_spread: float,
    suffix: str = "",
) -> dict[str, Tape]:
    """A made-up tape for each of ``specs``, whose names end with a broker's ``suffix``."""
    return {
        spec.name: SyntheticTape(
            spec,
            seed=seed,
            sessions=sessions,
            rollover_spread=rollover_spread,
            market=spec.name.removesuffix(suffix) if suffix else None,
        )
        for spec in specs
    }
