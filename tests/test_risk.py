"""The node's RiskMonitor: every limit, orders in flight, the book and the day's loss."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from loguru import logger

from inf_bridge import RiskLimits, RiskMonitor, RiskRejected
from inf_bridge.day_start import DayStart, read_day_start, write_day_start
from protocol import Account, Open, Position, Side


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def order(
    symbol: str = "EURUSD",
    side: Side = Side.BUY,
    volume: float = 0.1,
    sl: float | None = None,
    uuid: str = "u",
) -> Open:
    return Open(uuid=uuid, timestamp=0.0, symbol=symbol, type=side, volume=volume, sl=sl)


def reason(monitor: RiskMonitor, o: Open) -> str:
    with pytest.raises(RiskRejected) as excinfo:
        monitor.check(o)
    return excinfo.value.reason


def position(ticket: int, symbol: str, side: Side, volume: float) -> Position:
    return Position(
        ticket=ticket,
        symbol=symbol,
        type=side,
        volume=volume,
        price_open=1.0,
        price_current=1.0,
        sl=0.0,
        tp=0.0,
        profit=0.0,
        swap=0.0,
        magic=0,
        comment="",
        time=0,
    )


def account(equity: float, login: int = 1) -> Account:
    return Account(
        login=login,
        server="s",
        currency="USD",
        leverage=100,
        balance=equity,
        equity=equity,
        margin=0.0,
        margin_free=equity,
        margin_level=0.0,
        profit=0.0,
        trade_mode="DEMO",
        trade_allowed=True,
    )


def test_each_limit_has_its_reason() -> None:
    monitor = RiskMonitor(
        RiskLimits(max_order_volume=1.0, symbols=["EURUSD"], require_stop_loss=True)
    )
    assert reason(monitor, order("GBPUSD", sl=1.0)) == "SYMBOL_NOT_ALLOWED"
    assert reason(monitor, order(volume=1.5, sl=1.0)) == "MAX_ORDER_VOLUME"
    assert reason(monitor, order(sl=None)) == "STOP_LOSS_REQUIRED"
    monitor.check(order(volume=1.0, sl=1.0))


def test_orders_in_flight_count_against_net_exposure() -> None:
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=0.25))
    first = monitor.check(order(uuid="a"))
    monitor.check(order(uuid="b"))
    assert reason(monitor, order(uuid="c")) == "MAX_SYMBOL_VOLUME"  # 0.3 with two in flight
    monitor.check(order(side=Side.SELL, volume=0.4, uuid="d"))  # net 0.2 - 0.4 = -0.2
    monitor.settle(first, None)  # "a" was not executed: its exposure is released
    assert monitor.exposure("EURUSD") == pytest.approx(0.1 - 0.4)


def test_positions_limit_counts_open_and_opening() -> None:
    monitor = RiskMonitor(RiskLimits(max_positions=2))
    a = monitor.check(order(uuid="a"))
    monitor.settle(a, ticket=11)
    monitor.check(order(uuid="b"))
    assert reason(monitor, order(uuid="c")) == "MAX_POSITIONS"
    monitor.closed(11, 0.1)
    monitor.check(order(uuid="c"))


def test_partial_close_reduces_exposure() -> None:
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=1.0))
    monitor.settle(monitor.check(order(volume=1.0)), ticket=7)
    assert reason(monitor, order(volume=0.1, uuid="x")) == "MAX_SYMBOL_VOLUME"
    monitor.closed(7, 0.4)
    assert monitor.exposure("EURUSD") == pytest.approx(0.6)
    monitor.check(order(volume=0.4, uuid="y"))


@pytest.mark.parametrize("told", [True, False], ids=["named-by-the-reply", "by-its-suffix"])
def test_a_symbol_limit_holds_whatever_the_broker_calls_the_symbol(told: bool) -> None:
    # The strategy orders EURUSD; the gateway trades EURUSD.m and reports the book so.
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=1.0))
    reservation = monitor.check(order(volume=1.0))
    if told:
        monitor.named("EURUSD", "EURUSD.m")  # the reply's symbol
    monitor.settle(reservation, ticket=7)
    other = position(8, "GBPUSD.m", Side.BUY, 2.0)  # never ordered here: its own name
    monitor.sync([position(7, "EURUSD.m", Side.BUY, 1.0), other], monitor.now())
    assert monitor.exposure("EURUSD") == pytest.approx(1.0)
    assert reason(monitor, order(volume=0.5, uuid="v")) == "MAX_SYMBOL_VOLUME"
    assert monitor.exposure("GBPUSD.m") == pytest.approx(2.0)


def test_orders_per_minute_is_a_sliding_window() -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_orders_per_minute=2), clock=clock)
    monitor.check(order(uuid="a"))
    clock.now += 30
    monitor.check(order(uuid="b"))
    assert reason(monitor, order(uuid="c")) == "MAX_ORDERS_PER_MINUTE"
    clock.now += 31  # the first has left the window
    monitor.check(order(uuid="c"))


def test_sync_replaces_the_book_but_keeps_newer_fills() -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=10.0), clock=clock)
    monitor.settle(monitor.check(order(volume=1.0, uuid="old")), ticket=1)
    asked = monitor.now()
    clock.now += 1
    monitor.settle(monitor.check(order(volume=2.0, uuid="new")), ticket=2)  # after the ask
    # The gateway's answer: ticket 1 was closed by its stop loss; a manual GBPUSD sell exists.
    monitor.sync([position(3, "GBPUSD", Side.SELL, 0.5)], asked)
    assert monitor.exposure("EURUSD") == pytest.approx(2.0)  # 1 gone, 2 kept
    assert monitor.exposure("GBPUSD") == pytest.approx(-0.5)


def test_daily_loss_against_the_days_first_equity() -> None:
    monitor = RiskMonitor(RiskLimits(max_daily_loss=100.0))
    morning = datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert not monitor.daily_loss_breached(account(10_000), morning)
    assert not monitor.daily_loss_breached(account(9_950), morning)
    assert monitor.daily_loss_breached(account(9_899), morning)
    tomorrow = datetime(2026, 11, 25, 0, 1, tzinfo=UTC)
    assert not monitor.daily_loss_breached(account(9_899), tomorrow)  # a new day, a new start


def test_the_days_first_equity_outlives_a_restart_in_the_daily_loss_file(
    tmp_path: Path,
) -> None:
    limits = RiskLimits(max_daily_loss=100.0, daily_loss_file=str(tmp_path / "risk" / "day.json"))
    morning, noon = datetime(2026, 11, 24, 8, tzinfo=UTC), datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert not RiskMonitor(limits).daily_loss_breached(account(10_000), morning)
    # The node crashed and was restarted: its new monitor counts from the morning's reading.
    restarted = RiskMonitor(limits)
    assert not restarted.daily_loss_breached(account(9_950), noon)
    assert restarted.daily_loss_breached(account(9_899), noon)
    assert restarted.day_start_equity == 10_000
    # Another day, or another account, starts its own count, and the file follows it.
    tomorrow = datetime(2026, 11, 25, 0, 1, tzinfo=UTC)
    assert not RiskMonitor(limits).daily_loss_breached(account(9_899), tomorrow)
    assert RiskMonitor(limits).daily_loss_breached(account(9_700), tomorrow)
    other = RiskMonitor(limits)
    assert not other.daily_loss_breached(account(500, login=2), tomorrow)
    assert other.day_start_equity == 500
    stored = msgspec.json.decode((tmp_path / "risk" / "day.json").read_bytes())
    assert stored == {"day": "2026-11-25", "login": 2, "server": "s", "equity": 500.0}


def test_an_unreadable_daily_loss_file_is_replaced_with_a_new_reading(tmp_path: Path) -> None:
    path = tmp_path / "day.json"
    path.write_text("{not json")
    logged: list[str] = []
    sink = logger.add(logged.append, level="ERROR", format="{message}")
    try:
        monitor = RiskMonitor(RiskLimits(max_daily_loss=100.0, daily_loss_file=str(path)))
        assert not monitor.daily_loss_breached(account(10_000))
    finally:
        logger.remove(sink)
    assert any("no readable starting equity" in line for line in logged)
    assert msgspec.json.decode(path.read_bytes())["equity"] == 10_000.0


def test_a_daily_loss_file_that_cannot_be_written_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a directory should be")
    with pytest.raises(ValueError, match="daily_loss_file"):
        RiskMonitor(RiskLimits(max_daily_loss=1.0, daily_loss_file=str(tmp_path / "taken" / "d")))
    with pytest.raises(ValueError, match="daily_loss_file"):
        RiskMonitor(RiskLimits(max_daily_loss=1.0, daily_loss_file=str(tmp_path)))
    with pytest.raises(ValueError, match="daily_loss_file is set but max_daily_loss is not"):
        RiskLimits(daily_loss_file=str(tmp_path / "d"))
    with pytest.raises(ValueError, match="daily_loss_file must be a path"):
        RiskLimits(max_daily_loss=1.0, daily_loss_file=7)  # type: ignore[arg-type]


def test_a_failed_write_of_the_daily_loss_file_keeps_the_reading_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("inf_bridge.day_start.os.replace", refuse)
    path = tmp_path / "day.json"
    logged: list[str] = []
    sink = logger.add(logged.append, level="ERROR", format="{message}")
    try:
        monitor = RiskMonitor(RiskLimits(max_daily_loss=100.0, daily_loss_file=str(path)))
        assert not monitor.daily_loss_breached(account(10_000))
        assert monitor.daily_loss_breached(account(9_899))
    finally:
        logger.remove(sink)
    assert list(tmp_path.iterdir()) == []  # no reading, and no temporary file left behind
    assert any("No space left on device" in line for line in logged)


def test_nodes_writing_the_daily_loss_file_at_once_leave_one_whole_reading(
    tmp_path: Path,
) -> None:
    path = tmp_path / "day.json"
    readings = [DayStart(day="2026-11-24", login=n, server="s", equity=1e6 + n) for n in (1, 2)]
    write_day_start(path, readings[0])
    stop = threading.Event()
    seen: list[DayStart | None] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(read_day_start(path))

    def writer(reading: DayStart) -> None:
        for _ in range(200):
            write_day_start(path, reading)

    threads = [threading.Thread(target=writer, args=(r,)) for r in readings]
    watcher = threading.Thread(target=reader)
    for thread in (watcher, *threads):
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    watcher.join(timeout=60)
    assert seen and all(reading in readings for reading in seen)  # never torn, never absent
    assert read_day_start(path) in readings
    assert [p.name for p in tmp_path.iterdir()] == ["day.json"]


def test_a_daily_loss_held_in_memory_only_is_warned_about() -> None:
    logged: list[str] = []
    sink = logger.add(logged.append, level="WARNING", format="{message}")
    try:
        RiskMonitor(RiskLimits(max_daily_loss=100.0))
        RiskMonitor(RiskLimits(max_order_volume=1.0))
    finally:
        logger.remove(sink)
    assert len(logged) == 1 and "without daily_loss_file" in logged[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_order_volume": 0},
        {"max_symbol_volume": -1.0},
        {"max_daily_loss": 0.0},
        {"max_positions": -1},
        {"max_orders_per_minute": 1.5},
    ],
)
def test_bad_limits_name_the_field(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RiskLimits(**kwargs)  # type: ignore[arg-type]


def test_a_fill_already_in_a_synced_book_is_not_counted_twice() -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=10.0), clock=clock)
    reservation = monitor.check(order(volume=1.0, uuid="a"))
    clock.now += 1
    # The heartbeat's snapshot, asked after the order went out, already holds its fill.
    monitor.sync([position(7, "EURUSD", Side.BUY, 1.0)], monitor.now())
    monitor.settle(reservation, ticket=7)
    assert monitor.exposure("EURUSD") == pytest.approx(1.0)


def test_a_netting_position_that_grows_counts_each_fill() -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=10.0), clock=clock)
    monitor.sync([position(7, "EURUSD", Side.BUY, 1.0)], monitor.now())
    clock.now += 1
    monitor.settle(monitor.check(order(volume=0.5, uuid="b")), ticket=7)  # same ticket, grown
    assert monitor.exposure("EURUSD") == pytest.approx(1.5)
