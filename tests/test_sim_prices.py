"""The price walk: seeded, deterministic, tick-based, realistic, and cheap to catch up."""

from __future__ import annotations

import time

import pytest

from gtw_server.terminal.sim import SimConfig, SimTerminal
from gtw_server.terminal.sim.prices import MAX_REPLAY_TICKS, TICK_MS, PriceFeed
from gtw_server.terminal.sim.sessions import Sessions
from gtw_server.terminal.sim.symbols import SYMBOLS

T0 = 1_700_000_000.0


def terminal(seed: int = 0, clock: float = T0) -> SimTerminal:
    mt5 = SimTerminal(config=SimConfig(always_open=True, seed=seed), clock=lambda: clock)
    assert mt5.initialize()
    return mt5


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


def test_quotes_move_in_ticks_on_a_fixed_grid() -> None:
    mt5 = terminal(seed=1)
    start = mt5.symbol_info_tick("EURUSD")
    mt5.step(TICK_MS / 1000 / 2)  # within the same tick: nothing moves
    assert mt5.symbol_info_tick("EURUSD") == start
    ticks = path(mt5, "EURUSD", [TICK_MS / 1000] * 40)
    assert {time_msc % TICK_MS for _, _, time_msc in ticks} == {0}
    assert len({bid for bid, _, _ in ticks}) > 3  # it does walk


def test_spreads_and_digits_are_realistic() -> None:
    mt5 = terminal(seed=5)
    spreads = []
    for _ in range(400):
        mt5.step(TICK_MS / 1000)
        info = mt5.symbol_info("EURUSD")
        assert info is not None
        assert info.bid == round(info.bid, 5) and info.ask == round(info.ask, 5)
        spreads.append(info.spread)
        assert info.spread == round((info.ask - info.bid) / info.point)
    assert min(spreads) >= 11 and max(spreads) <= 19  # 15 points +- 25%
    assert 14 <= sum(spreads) / len(spreads) <= 16


def test_prices_move_like_their_market_over_an_hour() -> None:
    moves = []
    for seed in range(20):
        mt5 = terminal(seed=seed)
        before = mt5.symbol_info_tick("EURUSD")
        mt5.step(3600)
        after = mt5.symbol_info_tick("EURUSD")
        assert before is not None and after is not None
        moves.append(abs(after.bid - before.bid) / 0.0001)  # in pips
    # EURUSD at 8% a year moves about 9 pips (one standard deviation) in an hour.
    assert 2 < sum(moves) / len(moves) < 25


def test_a_long_gap_is_crossed_at_once_and_stays_believable() -> None:
    mt5 = terminal(seed=2)
    started = time.perf_counter()
    mt5.step(365 * 86_400)
    tick = mt5.symbol_info_tick("XAUUSD")
    assert time.perf_counter() - started < 0.05  # no replay of 126 million ticks
    assert tick is not None
    assert 2350 * 0.5 < tick.bid < 2350 * 1.5
    assert tick.time_msc == int((T0 + 365 * 86_400) * 1000)
    assert MAX_REPLAY_TICKS * TICK_MS < 365 * 86_400 * 1000


def test_the_default_clock_is_wall_time() -> None:
    mt5 = SimTerminal(config=SimConfig(always_open=True))
    assert mt5.initialize()
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    assert abs(tick.time_msc / 1000 - time.time()) < 1


def test_step_only_moves_forward() -> None:
    mt5 = terminal()
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="step"):
            mt5.step(bad)


def test_only_the_symbols_that_moved_since_the_last_save_are_written() -> None:
    """A commit writes the prices that moved, not all of them: what ``stored`` reloads is the
    same either way, since an unmoved walk is where it was saved."""
    specs = [SYMBOLS["EURUSD"], SYMBOLS["GBPUSD"]]
    now_ms = int(T0 * 1000)
    feed = PriceFeed(specs, seed=0, now_ms=now_ms, stored={}, sessions=Sessions(always_open=True))
    first = feed.unsaved()
    assert [name for name, _, _ in first] == ["EURUSD", "GBPUSD"]  # never saved: all of them
    feed.saved(first)
    assert feed.unsaved() == []

    feed.at(now_ms + 10 * TICK_MS)
    moved = feed.quote("EURUSD")
    rows = feed.unsaved()
    assert [(name, tick) for name, tick, _ in rows] == [("EURUSD", moved.time_msc // TICK_MS)]
    feed.saved(rows)
    assert feed.unsaved() == []

    reloaded = PriceFeed(
        specs,
        seed=0,
        now_ms=now_ms + 10 * TICK_MS,
        stored={name: (tick, level) for name, tick, level in first + rows},
        sessions=Sessions(always_open=True),
    )
    assert reloaded.unsaved() == []
    assert reloaded.quote("EURUSD") == moved
    assert reloaded.quote("GBPUSD") == feed.quote("GBPUSD")
