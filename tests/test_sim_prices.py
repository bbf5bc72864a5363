"""One history: the live quotes, the ticks and the bars of every timeframe come from one stream
of ticks per symbol, seeded, the same however and whenever it is read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.symbols import SYMBOLS
from gtw_server.terminal.sim.tape import HOUR_MS, MINUTE_MS, SyntheticTape

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, a Tuesday
WEDNESDAY = 1_700_006_400.0  # 2023-11-15 00:00 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def terminal(seed: int = 0, clock: Any = lambda: T0, always_open: bool = True) -> SimTerminal:
    mt5 = SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=always_open, seed=seed), clock=clock
    )
    assert mt5.initialize()
    return mt5


def rates(rows: Any) -> Any:
    assert rows is not None
    return rows


def path(mt5: SimTerminal, symbol: str, steps: list[float]) -> list[tuple[float, float, int]]:
    """The (bid, ask, time_msc) seen after each step."""
    seen = []
    for seconds in steps:
        mt5.step(seconds)
        tick = mt5.symbol_info_tick(symbol)
        assert tick is not None
        seen.append((tick.bid, tick.ask, tick.time_msc))
    return seen


def test_the_same_seed_and_clock_give_the_same_path() -> None:
    steps = [0.3, 1.0, 7.5, 60.0, 0.1, 3600.0]
    assert path(terminal(seed=7), "EURUSD", steps) == path(terminal(seed=7), "EURUSD", steps)
    assert path(terminal(seed=7), "EURUSD", steps) != path(terminal(seed=8), "EURUSD", steps)


def test_the_path_does_not_depend_on_how_often_it_is_read() -> None:
    often = path(terminal(seed=3), "USDJPY", [1.0] * 90)[-1]
    once = path(terminal(seed=3), "USDJPY", [90.0])[-1]
    assert often == once


@pytest.mark.parametrize("always_open", [True, False])
def test_m1_bars_aggregated_to_h1_equal_the_h1_bars_over_a_day(always_open: bool) -> None:
    """Over the day before a Thursday noon (with the market hours, the gold break in it)."""
    mt5 = terminal(clock=lambda: WEDNESDAY + 36 * 3600, always_open=always_open)
    for symbol in ("EURUSD", "XAUUSD"):
        hours = rates(mt5.copy_rates_from_pos(symbol, mt5.TIMEFRAME_H1, 1, 24))
        minutes = rates(
            mt5.copy_rates_range(
                symbol, mt5.TIMEFRAME_M1, int(hours["time"][0]), int(hours["time"][-1]) + 3599
            )
        )
        assert len(hours) == 24
        starts = minutes["time"] - minutes["time"] % 3600
        for bar in hours:
            part = minutes[starts == bar["time"]]
            aggregated = (
                part["open"][0],
                part["high"].max(),
                part["low"].min(),
                part["close"][-1],
                part["tick_volume"].sum(),
                part["spread"].min(),
            )
            assert aggregated == tuple(
                bar[["open", "high", "low", "close", "tick_volume", "spread"]]
            )


def test_every_timeframe_is_the_aggregate_of_the_one_below() -> None:
    mt5 = terminal(clock=lambda: WEDNESDAY + 40 * 86_400 + 3600 * 15 + 1234.5)
    for big, small, count in (
        (mt5.TIMEFRAME_M5, mt5.TIMEFRAME_M1, 5),
        (mt5.TIMEFRAME_H4, mt5.TIMEFRAME_H1, 4),
        (mt5.TIMEFRAME_D1, mt5.TIMEFRAME_H4, 6),
        (mt5.TIMEFRAME_W1, mt5.TIMEFRAME_D1, 7),
    ):
        bars = rates(mt5.copy_rates_from_pos("GBPUSD", big, 0, 3))  # the last is in progress
        parts = rates(mt5.copy_rates_from_pos("GBPUSD", small, 0, 4 * count))
        parts = parts[parts["time"] >= bars["time"][0]]
        for bar in bars:
            inside = parts[_period_of(parts["time"], bars["time"]) == bar["time"]]
            assert inside["open"][0] == bar["open"] and inside["close"][-1] == bar["close"]
            assert inside["high"].max() == bar["high"] and inside["low"].min() == bar["low"]
            assert inside["tick_volume"].sum() == bar["tick_volume"]


def _period_of(times: Any, starts: Any) -> Any:
    """The start, among ``starts``, of the period each time falls in."""
    return starts[np.searchsorted(starts, times, side="right") - 1]


def test_every_tick_shown_live_is_in_the_tick_history_and_inside_its_m1_bar() -> None:
    clock = Clock(T0 + 8 * 3600)  # London's morning: busy
    mt5 = terminal(clock=clock)
    shown = []
    for _ in range(300):
        clock.now += 0.7
        tick = mt5.symbol_info_tick("EURUSD")
        assert tick is not None
        shown.append(tick)
        (bar,) = rates(mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 1))
        assert bar["time"] == tick.time - tick.time % 60
        assert bar["low"] <= tick.bid <= bar["high"] and bar["close"] == tick.bid
    history = rates(
        mt5.copy_ticks_range("EURUSD", shown[0].time, shown[-1].time, mt5.COPY_TICKS_ALL)
    )
    kept = {(int(row["time_msc"]), float(row["bid"]), float(row["ask"])) for row in history}
    assert {(t.time_msc, t.bid, t.ask) for t in shown} <= kept
    assert len({t.time_msc for t in shown}) > 50  # it does tick


def test_a_tick_is_never_newer_than_the_clock_and_the_clock_never_runs_back() -> None:
    clock = Clock(T0)
    mt5 = terminal(clock=clock)
    first = mt5.symbol_info_tick("EURUSD")
    assert first is not None and first.time_msc <= T0 * 1000
    clock.now = T0 - 3600  # the machine's clock jumps back an hour
    again = mt5.symbol_info_tick("EURUSD")
    assert again == first  # the server's time does not go back with it
    clock.now = T0 + 60
    later = mt5.symbol_info_tick("EURUSD")
    assert later is not None and first.time_msc < later.time_msc <= (T0 + 60) * 1000


def test_spreads_and_digits_are_realistic() -> None:
    clock = Clock(T0 + 10 * 3600)
    mt5 = terminal(seed=5, clock=clock)
    spreads = []
    for _ in range(400):
        clock.now += 0.5
        info = mt5.symbol_info("EURUSD")
        assert info is not None
        assert info.bid == round(info.bid, 5) and info.ask == round(info.ask, 5)
        spreads.append(info.spread)
        assert info.spread == round((info.ask - info.bid) / info.point)
    assert min(spreads) >= 11 and max(spreads) <= 30  # 15 points typical
    assert 11 <= sum(spreads) / len(spreads) <= 20


def test_the_history_is_at_believable_levels_with_sessions() -> None:
    """EURUSD over 2020 stays near its reference price; London and New York move more and
    tick more than Asia."""
    tape = SyntheticTape(SYMBOLS["EURUSD"], seed=0, sessions=Sessions(always_open=False))
    first = 18_262 * 24  # 2020-01-01
    hours = tape.hours(first, first + 366 * 24)
    closes = hours["close"] * 1e-5
    assert closes.min() > 0.9 and closes.max() < 1.3
    of_day = hours["time"] // HOUR_MS % 24
    asia, london = hours[(of_day >= 0) & (of_day < 6)], hours[(of_day >= 8) & (of_day < 16)]
    assert np.median(london["high"] - london["low"]) > 1.3 * np.median(asia["high"] - asia["low"])
    assert np.median(london["ticks"]) > 2 * np.median(asia["ticks"])


def test_markets_close_at_the_weekend_and_reopen_with_a_gap() -> None:
    tape = SyntheticTape(SYMBOLS["EURUSD"], seed=0, sessions=Sessions(always_open=False))
    friday = 20_000 * 24  # 2024-10-04, a Friday
    hours = tape.hours(friday, friday + 3 * 24)
    times = hours["time"] // HOUR_MS
    gap = np.flatnonzero(np.diff(times) > 1)
    (last_friday,) = gap
    assert times[last_friday + 1] - times[last_friday] == 49  # Friday 21:00 to Sunday 22:00
    opened = tape.minutes(int(times[last_friday + 1]) * 60, int(times[last_friday + 1]) * 60)
    assert opened["open"][0] != hours["close"][last_friday]  # the price moved meanwhile
    assert not len(tape.ticks_of((friday + 36) * 60))  # Saturday noon: no ticks


def test_a_week_is_caught_up_by_its_bars() -> None:
    """Scanning a week of ticks for a far stop looks at hour bars, not at every tick."""
    clock = Clock(T0)
    mt5 = terminal(clock=clock)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask}
    sent = mt5.order_send(request | {"sl": round(tick.bid - 0.5, 5)})
    assert sent is not None and sent.retcode == 10009
    clock.now += 7 * 86_400
    assert mt5.positions_total() == 1
    tape = mt5._tapes["EURUSD"]
    assert isinstance(tape, SyntheticTape)
    # The minutes of the first hour, of this one, and around each rollover (swaps are
    # valued there): not the 168 hours of the week.
    assert len(tape._minute_cache) < 24


def test_the_tape_agrees_with_itself_at_every_resolution() -> None:
    tape = SyntheticTape(SYMBOLS["XAUUSD"], seed=11, sessions=Sessions(always_open=False))
    hour = int(T0 * 1000) // HOUR_MS - 30
    minutes = tape.minutes(hour * 60, hour * 60 + 24 * 60 - 1)
    for bar in minutes[::37]:
        ticks = tape.ticks_of(int(bar["time"]) // MINUTE_MS)
        assert len(ticks) == bar["ticks"]
        assert (ticks["bid"][0], ticks["bid"][-1]) == (bar["open"], bar["close"])
        assert (ticks["bid"].max(), ticks["bid"].min()) == (bar["high"], bar["low"])
        assert ticks["spread"].min() == bar["spread"]
        assert (np.diff(ticks["time"]) > 0).all()
        assert (ticks["time"] // MINUTE_MS == bar["time"] // MINUTE_MS).all()
