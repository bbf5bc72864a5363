"""Replaying a broker's own history: the CSV files a MetaTrader 5 terminal exports, as a ``Tape``.

In the terminal: View > Symbols (Ctrl+U), a symbol, the Bars tab (timeframe M1) or the Ticks
tab, Request, then Export. Both files are tab-separated text with a header line:

- **M1 bars**: ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>``, for
  example ``2024.03.04  00:00:00  1.08372  1.08380  1.08365  1.08377  41  0  6``. Prices are
  bids; ``<SPREAD>`` is in points.
- **Ticks**: ``<DATE> <TIME> <BID> <ASK> <LAST> <VOLUME> <FLAGS>``, for example
  ``2024.03.04  00:00:00.137  1.08372  1.08378  <empty>  <empty>  6``; the time has
  milliseconds, and a price that did not change is left empty (it is carried over).

Dates are ``YYYY.MM.DD`` and times are the broker's server time, read on the simulator's
server clock (``[sim] server_timezone``). Commas are accepted in place of tabs. The file's
kind is told by its header.

From ticks, the minute and hour bars are aggregated; from M1 bars, the bars are the file's and
the ticks of each minute are made up to fit it (first at its open, last at its close, through
its high and low, ``<TICKVOL>`` of them, at its spread), as the strategy tester does with
"1 minute OHLC". A minute the file has no row for has no trading.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np

from gtw_server.terminal.sim.symbols import SymbolSpec
from gtw_server.terminal.sim.tape import (
    BAR,
    HOUR_MS,
    MIN_TICKS,
    MINUTE_MS,
    TICK,
    Tape,
    aggregate,
    between,
    kept,
    pinned,
    step_sd,
)
from protocol.server_time import ServerClock

__all__ = [
    "BAR_COLUMNS",
    "TICK_COLUMNS",
    "Export",
    "ReplayError",
    "ReplayTape",
    "read_export",
    "replay_clock",
    "replayed_spec",
]

BAR_COLUMNS: Final = (
    "<DATE>",
    "<TIME>",
    "<OPEN>",
    "<HIGH>",
    "<LOW>",
    "<CLOSE>",
    "<TICKVOL>",
    "<VOL>",
    "<SPREAD>",
)
TICK_COLUMNS: Final = ("<DATE>", "<TIME>", "<BID>", "<ASK>", "<LAST>", "<VOLUME>", "<FLAGS>")


class ReplayError(ValueError):
    """A replay file that cannot be read: the message names the file and the line."""


def _epoch_ms(date: str, clock: str) -> int:
    layout = "%Y.%m.%d %H:%M:%S.%f" if "." in clock else "%Y.%m.%d %H:%M:%S"
    moment = datetime.strptime(f"{date.strip()} {clock.strip()}", layout)
    return round(moment.replace(tzinfo=UTC).timestamp() * 1000)


class Export(NamedTuple):
    """An exported file as read: its rows of text, and which kind it is."""

    path: Path
    ticks: bool  # a Ticks export, else M1 bars
    rows: list[list[str]]

    def digits(self) -> int:
        """The most decimals its prices show: the symbol's digits."""
        columns = (2, 3) if self.ticks else (2, 3, 4, 5)
        decimals = [
            len(cell.strip().partition(".")[2])
            for row in self.rows[:5000]
            for cell in (row[index] for index in columns if index < len(row))
        ]
        return max(decimals, default=0)


def read_export(path: str | Path) -> Export:
    """Reads a file the terminal exported (``ReplayError`` if it is not one)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="utf-16")  # the terminal's "Unicode" export
    lines = text.splitlines()
    if not lines:
        raise ReplayError(f"{path}: empty")
    reader = csv.reader(lines, delimiter="\t" if "\t" in lines[0] else ",")
    header = [cell.strip().upper() for cell in next(reader)]
    rows = [row for row in reader if row]
    if header[: len(TICK_COLUMNS) - 2] == list(TICK_COLUMNS[:-2]):
        return Export(path, True, rows)
    if header[: len(BAR_COLUMNS) - 2] == list(BAR_COLUMNS[:-2]):
        return Export(path, False, rows)
    raise ReplayError(
        f"{path}: not an MT5 export; its header should begin with"
        f" {' '.join(BAR_COLUMNS[:6])} (M1 bars) or {' '.join(TICK_COLUMNS[:4])} (ticks),"
        f" not {' '.join(header[:6])}"
    )


def replayed_spec(name: str, like: SymbolSpec, export: Export) -> SymbolSpec:
    """A symbol the simulator does not list, replayed from ``export``: ``like``'s contract,
    the file's digits."""
    return replace(
        like,
        name=name,
        description=f"{name} (replayed from {export.path.name})",
        path=f"Custom\\{name}",
        digits=export.digits(),
        selected=True,
    )


class ReplayTape(Tape):
    """The stream of ticks of ``spec`` read from an exported file, whose times are on
    ``server``'s clock (the tape's are UTC)."""

    def __init__(self, spec: SymbolSpec, export: Export, server: ServerClock) -> None:
        super().__init__(spec)
        self.path = export.path
        self._key = blake2b(str(self.path.name).encode(), digest_size=8).digest()
        if export.ticks:
            self._ticks: Any = self._parse_ticks(export.rows)
            self._ticks["time"] = server.to_utc_ms(self._ticks["time"])
            self._minutes = aggregate(self._ticks, self._ticks["time"] // MINUTE_MS * MINUTE_MS)
        else:
            self._ticks = None
            self._minutes = self._parse_bars(export.rows)
            self._minutes["time"] = server.to_utc_ms(self._minutes["time"])
        if not len(self._minutes):
            raise ReplayError(f"{self.path}: no rows")
        self._hours = aggregate(self._minutes, self._minutes["time"] // HOUR_MS * HOUR_MS)
        first = self._ticks if self._ticks is not None else self._minutes
        self.first_ms = int(first["time"][0])  # the first tick's time
        self._made: dict[int, Any] = {}  # minute -> ticks made up from its bar

    def _parse_bars(self, rows: list[list[str]]) -> Any:
        out = np.zeros(len(rows), dtype=BAR)
        point = self.spec.point
        for number, row in enumerate(rows):
            try:
                date, clock, open_, high, low, close, ticks, _, spread = row[:9]
                out[number] = (
                    _epoch_ms(date, clock),
                    round(float(open_) / point),
                    round(float(high) / point),
                    round(float(low) / point),
                    round(float(close) / point),
                    max(1, int(ticks)),
                    int(spread),
                )
            except ValueError as error:
                raise ReplayError(f"{self.path}, line {number + 2}: {error}: {row}") from None
        bad = (out["low"] > np.minimum(out["open"], out["close"])) | (
            out["high"] < np.maximum(out["open"], out["close"])
        )
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise ReplayError(f"{self.path}, line {line}: its high and low do not hold the bar")
        misaligned = np.flatnonzero(out["time"] % MINUTE_MS != 0)
        if len(misaligned):
            line = int(misaligned[0]) + 2
            raise ReplayError(f"{self.path}, line {line}: not the start of a minute (M1 bars)")
        self._check_order(out["time"])
        return out

    def _parse_ticks(self, rows: list[list[str]]) -> Any:
        out = np.zeros(len(rows), dtype=TICK)
        point = self.spec.point
        bid = ask = math.nan
        for number, row in enumerate(rows):
            try:
                date, clock, bid_text, ask_text = row[:4]
                bid = float(bid_text) if bid_text.strip() else bid
                ask = float(ask_text) if ask_text.strip() else ask
                if math.isnan(bid) or math.isnan(ask):
                    raise ValueError("a bid and an ask are needed before the first tick")
                out[number] = (
                    _epoch_ms(date, clock),
                    round(bid / point),
                    round((ask - bid) / point),
                )
            except ValueError as error:
                raise ReplayError(f"{self.path}, line {number + 2}: {error}: {row}") from None
        self._check_order(out["time"])
        return out

    def _check_order(self, times: Any) -> None:
        """Rows in time order: a row earlier than the one before is refused with its line."""
        backwards = np.flatnonzero(np.diff(times) < 0)
        if len(backwards):
            line = int(backwards[0]) + 3  # the header, and the later row of the pair
            raise ReplayError(f"{self.path}, line {line}: earlier than the line before")

    # -- Tape -------------------------------------------------------------------------------

    def hours(self, first: int, last: int) -> Any:
        return between(self._hours, first * HOUR_MS, last * HOUR_MS)

    def minutes(self, first: int, last: int) -> Any:
        return between(self._minutes, first * MINUTE_MS, last * MINUTE_MS)

    def ticks_of(self, minute: int) -> Any:
        if self._ticks is not None:
            return between(self._ticks, minute * MINUTE_MS, minute * MINUTE_MS + MINUTE_MS - 1)
        return kept(self._made, minute, lambda: self._make(self.minutes(minute, minute), minute))

    def _make(self, bar: Any, minute: int) -> Any:
        """Ticks that fit a bar of the file (none without one): ``<TICKVOL>`` of them when
        that is enough."""
        if not len(bar):
            return np.zeros(0, dtype=TICK)
        open_, high = int(bar["open"][0]), int(bar["high"][0])
        low, close = int(bar["low"][0]), int(bar["close"][0])
        count = int(bar["ticks"][0])
        seed = int.from_bytes(self._key, "big") ^ minute
        rng = np.random.default_rng(seed)
        if count >= MIN_TICKS:
            sd = step_sd(high, low, count)
            bids = pinned(bar, sd * rng.standard_normal((1, count - 1)), rng.random(1))[0]
        else:  # too few ticks for a walk: the open, the extremes on the way, the close
            bids = np.array(
                [open_]
                + ([high] if high > max(open_, close) else [])
                + ([low] if low < min(open_, close) else [])
                + ([close] if (close != open_ or count > 1) else [])
            )
        rows = np.zeros(len(bids), dtype=TICK)
        # The open at the minute's start (a replay can start there), the others after it.
        later = rng.choice(np.arange(1, MINUTE_MS), size=len(bids) - 1, replace=False)
        rows["time"] = minute * MINUTE_MS + np.concatenate(([0], np.sort(later)))
        rows["bid"] = bids
        rows["spread"] = int(bar["spread"][0])
        return rows

    def last_trading_ms(self, at_ms: int) -> int:
        if self._ticks is not None:
            index = int(np.searchsorted(self._ticks["time"], at_ms, side="right")) - 1
            return at_ms if index < 0 else min(at_ms, int(self._ticks["time"][index]))
        index = int(np.searchsorted(self._minutes["time"], at_ms, side="right")) - 1
        if index < 0:
            return at_ms
        return min(at_ms, int(self._minutes["time"][index]) + MINUTE_MS - 1)

    def spread_cap(self) -> int:
        source = self._ticks if self._ticks is not None else self._minutes
        return int(source["spread"].max())


def replay_clock(clock: Callable[[], float], start_s: float, speed: float) -> Callable[[], float]:
    """A clock that reads ``start_s`` now and runs ``speed`` times as fast as ``clock``."""
    began = clock()
    return lambda: start_s + (clock() - began) * speed
