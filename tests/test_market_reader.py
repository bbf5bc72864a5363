"""The worker's market-data reads (``gtw_server.market``) on the simulated terminal, in process,
with a clock the test moves: what the event feed's polls publish, and how rows are packed.

The end-to-end paths (a gateway process, its sockets, the client) are in
``test_market_requests.py`` and ``test_streams.py``; here the question is only what one poll
returns after the market moved by a known amount.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import numpy as np
import pytest

from gtw_server.adapter import TerminalAdapter
from gtw_server.errors import TerminalRefused
from gtw_server.market import (
    BarCursor,
    MarketReader,
    Poll,
    RatesQuery,
    TickCursor,
    TicksQuery,
    _after,
    _table,
)
from gtw_server.terminal.sim import SimConfig, SimTerminal, history
from protocol import RATES_DTYPE, TICKS_DTYPE, ErrorCode, Timeframe

T0 = 1_700_000_000.0  # Tuesday 2023-11-14, 22:13:20 UTC: the simulator's markets are open
M1 = Timeframe.M1.constant


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader(clock: Clock) -> Iterator[MarketReader]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=clock
    ) as terminal:
        yield MarketReader(TerminalAdapter(terminal))


def test_a_new_tick_subscription_starts_at_the_latest_quote(reader: MarketReader) -> None:
    polled = reader.poll(Poll(ticks={"EURUSD": TickCursor()}))
    [tick] = polled.ticks["EURUSD"]
    latest = reader.mt5.symbol_info_tick("EURUSD")
    assert (tick.bid, tick.ask, tick.time_msc) == (latest.bid, latest.ask, latest.time_msc)
    assert tick.symbol == "EURUSD"
    assert polled.cursors["EURUSD"] == TickCursor(latest.time_msc, 1)


def test_each_poll_gives_every_tick_since_the_last_once(reader: MarketReader, clock: Clock) -> None:
    cursor = reader.poll(Poll(ticks={"EURUSD": TickCursor()})).cursors["EURUSD"]
    first = cursor.after_msc
    seen: list[int] = []
    for step in (0.0, 0.3, 1.0, 2.5, 0.1, 30.0, 12.5, 60.0):
        clock.now += step
        polled = reader.poll(Poll(ticks={"EURUSD": cursor}))
        seen += [tick.time_msc for tick in polled.ticks["EURUSD"]]
        cursor = polled.cursors["EURUSD"]
    # Every tick of the 106.4 s since the first poll, each once, in order, up to the live one.
    assert len(seen) > 10 and seen == sorted(set(seen))
    assert seen[0] > first
    assert seen[-1] == reader.mt5.symbol_info_tick("EURUSD").time_msc
    history = reader.mt5.copy_ticks_range("EURUSD", int(first // 1000), int(clock.now), -1)
    assert [t for t in history["time_msc"].tolist() if t > first] == seen


def test_nothing_new_means_an_empty_poll(reader: MarketReader) -> None:
    cursor = reader.poll(Poll(ticks={"GBPUSD": TickCursor()})).cursors["GBPUSD"]
    polled = reader.poll(Poll(ticks={"GBPUSD": cursor}))
    assert polled.ticks["GBPUSD"] == []
    assert polled.cursors["GBPUSD"] == cursor


def test_ticks_that_share_a_millisecond_are_each_published_once() -> None:
    rows = np.zeros(5, dtype=np.dtype(TICKS_DTYPE))
    rows["time_msc"] = [1000, 1000, 1000, 1250, 1250]
    rows["bid"] = [1.0, 1.1, 1.2, 1.3, 1.4]
    # Two of the three ticks at 1000 were published: the third and both at 1250 are new.
    ticks, cursor = _after(rows, TickCursor(1000, 2), "X")
    assert [t.bid for t in ticks] == [1.2, 1.3, 1.4]
    assert cursor == TickCursor(1250, 2)
    # A third tick arrives at 1250 itself.
    more = np.concatenate([rows[3:], rows[4:]])
    ticks, cursor = _after(more, cursor, "X")
    assert [t.bid for t in ticks] == [1.4]
    assert cursor == TickCursor(1250, 3)


def test_a_bar_is_published_once_it_has_closed(reader: MarketReader, clock: Clock) -> None:
    polled = reader.poll(Poll(bars=[BarCursor("EURUSD", M1)]))
    [(cursor, bars)] = polled.bars
    assert bars == []  # the first poll only notes where the stream is
    last_closed = cursor.after
    assert last_closed % 60 == 0

    clock.now += 1  # T0 is 20 s into its minute: this one has not turned
    [(cursor, bars)] = reader.poll(Poll(bars=[cursor])).bars
    assert bars == []

    clock.now += 180  # three minutes turn: three bars close
    [(cursor, bars)] = reader.poll(Poll(bars=[cursor])).bars
    times = [bar.time for bar in bars]
    assert times == [last_closed + 60, last_closed + 120, last_closed + 180]
    assert cursor.after == times[-1]
    closed = reader.mt5.copy_rates_from_pos("EURUSD", M1, 1, len(times))
    assert [bar.time for bar in bars] == closed["time"].tolist()
    assert [bar.close for bar in bars] == closed["close"].tolist()
    assert {(bar.symbol, bar.timeframe) for bar in bars} == {("EURUSD", "M1")}

    [(cursor, bars)] = reader.poll(Poll(bars=[cursor])).bars
    assert bars == []  # and each only once


def test_an_unknown_symbol_fails_alone(reader: MarketReader) -> None:
    polled = reader.poll(
        Poll(
            ticks={"EURUSD": TickCursor(), "NOPE": TickCursor()},
            bars=[BarCursor("NOPE", M1), BarCursor("USDJPY", M1)],
        )
    )
    code, reason = polled.failed["NOPE"]
    assert code == ErrorCode.SYMBOL_NOT_FOUND and "not known to the terminal" in reason
    assert set(polled.failed) == {"NOPE"}
    assert len(polled.ticks["EURUSD"]) == 1
    assert [cursor.symbol for cursor, _ in polled.bars] == ["USDJPY"]


def test_a_symbol_outside_the_market_watch_is_selected_first(reader: MarketReader) -> None:
    assert reader.mt5.symbol_info("GER40") is None  # not in the Market Watch (-4)
    info = reader.symbol("GER40")
    assert info.name == "GER40"
    assert info.select


@pytest.mark.parametrize(
    ("query", "call"),
    [
        (
            RatesQuery(symbol="EURUSD", timeframe=M1, max_rows=10**6, count=50, start_pos=3),
            lambda mt5: mt5.copy_rates_from_pos("EURUSD", M1, 3, 50),
        ),
        (
            RatesQuery(symbol="EURUSD", timeframe=M1, max_rows=10**6, count=50, date_from=int(T0)),
            lambda mt5: mt5.copy_rates_from("EURUSD", M1, int(T0), 50),
        ),
        (
            RatesQuery(
                symbol="EURUSD",
                timeframe=M1,
                max_rows=10**6,
                date_from=int(T0) - 3600,
                date_to=int(T0),
            ),
            lambda mt5: mt5.copy_rates_range("EURUSD", M1, int(T0) - 3600, int(T0)),
        ),
    ],
    ids=["from_pos", "from", "range"],
)
def test_rates_are_the_packages_array_as_bytes(
    reader: MarketReader, query: RatesQuery, call: object
) -> None:
    table = reader.rates(query)
    expected = call(reader.mt5)  # type: ignore[operator]
    assert table.rows == len(expected) > 0
    assert table.data == expected.astype(np.dtype(RATES_DTYPE)).tobytes()


def test_rows_are_packed_in_the_wires_dtype_whatever_the_arrays_layout() -> None:
    other = np.zeros(3, dtype=[("close", "<f4"), ("time", "<i4"), ("open", "<f8")])
    other["time"], other["close"] = [60, 120, 180], [1.5, 2.5, 3.5]
    table = _table(other, np.dtype(RATES_DTYPE), max_rows=10)
    rows = np.frombuffer(table.data, dtype=np.dtype(RATES_DTYPE))
    assert table.rows == 3 and len(table.data) == 3 * 60
    assert rows["time"].tolist() == [60, 120, 180]
    assert rows["close"].tolist() == [1.5, 2.5, 3.5]
    assert rows["high"].tolist() == [0.0, 0.0, 0.0]  # a field the array lacks


def test_more_rows_than_max_rows_are_refused(reader: MarketReader) -> None:
    query = RatesQuery(
        symbol="EURUSD", timeframe=M1, max_rows=100, date_from=int(T0) - 86_400, date_to=int(T0)
    )
    with pytest.raises(TerminalRefused) as refused:
        reader.rates(query)
    assert refused.value.code == ErrorCode.TOO_LARGE
    assert "over this gateway's limit of 100" in str(refused.value)


def test_the_wires_dtypes_are_the_simulated_packages() -> None:
    """protocol's dtypes describe what the terminal's copy_* functions return (the simulator
    keeps its own copy: it knows nothing of the wire)."""
    assert history.RATES_DTYPE == RATES_DTYPE
    assert history.TICKS_DTYPE == TICKS_DTYPE


def test_a_tick_range_is_the_packages_range_read_a_bounded_way(reader: MarketReader) -> None:
    start, end = int(T0) - 120, int(T0) - 60
    query = TicksQuery(symbol="EURUSD", date_from=start, date_to=end, flags="ALL", max_rows=1000)
    reader.symbol("EURUSD")  # connects
    expected = reader.mt5.copy_ticks_range("EURUSD", start, end, -1)
    table = reader.ticks(query)
    assert table.rows == len(expected) > 0
    assert table.data == expected.astype(np.dtype(TICKS_DTYPE)).tobytes()
    # Past the limit it is refused, having read no more than one tick over it.
    calls: list[int] = []
    copy = reader.mt5.copy_ticks_from

    def counted(symbol: str, date_from: int, count: int, flags: int) -> object:
        calls.append(count)
        return copy(symbol, date_from, count, flags)

    reader.mt5 = type("Spy", (), {"copy_ticks_from": staticmethod(counted), "COPY_TICKS_ALL": -1})()
    small = msgspec.structs.replace(query, max_rows=len(expected) - 1)
    with pytest.raises(TerminalRefused) as refused:
        reader.ticks(small)
    assert refused.value.code == ErrorCode.TOO_LARGE
    assert calls == [len(expected)]
