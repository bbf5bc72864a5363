"""The RiskMonitor and pending orders: a PLACE is checked like an OPEN, on its own side; once
placed it is exposure until cancelled; and a book sync with the gateway's pending orders
replaces what the node holds, without counting an order twice."""

from __future__ import annotations

import pytest

from inf_bridge import RiskLimits, RiskMonitor, RiskRejected
from protocol import Open, Order, PendingType, Place, Position, Side


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def place(
    type: PendingType = PendingType.BUY_LIMIT,
    volume: float = 0.1,
    symbol: str = "EURUSD",
    sl: float | None = None,
    uuid: str = "p",
) -> Place:
    return Place(
        uuid=uuid,
        timestamp=0.0,
        symbol=symbol,
        type=type,
        volume=volume,
        price=1.08,
        stoplimit=1.079 if type.stop_limit else None,
        sl=sl,
    )


def market(side: Side = Side.BUY, volume: float = 0.1, uuid: str = "o") -> Open:
    return Open(uuid=uuid, timestamp=0.0, symbol="EURUSD", type=side, volume=volume)


def reason(monitor: RiskMonitor, request: Place | Open) -> str:
    with pytest.raises(RiskRejected) as excinfo:
        monitor.check(request)
    return excinfo.value.reason


def pending(ticket: int, type: PendingType, volume: float, remaining: float | None = None) -> Order:
    """A pending order as GET_ORDERS gives it (``remaining``: its volume still to fill)."""
    return Order(
        ticket=ticket,
        time_setup=1_700_000_000,
        time_setup_msc=1_700_000_000_000,
        time_done=0,
        time_done_msc=0,
        time_expiration=0,
        type=type.constant,
        type_time=0,
        type_filling=2,
        state=1,
        magic=0,
        position_id=0,
        position_by_id=0,
        reason=0,
        volume_initial=volume,
        volume_current=volume if remaining is None else remaining,
        price_open=1.08,
        sl=0.0,
        tp=0.0,
        price_current=1.085,
        price_stoplimit=1.079 if type.stop_limit else 0.0,
        symbol="EURUSD",
        comment="",
        external_id="",
    )


def position(ticket: int, side: Side, volume: float) -> Position:
    return Position(
        ticket=ticket,
        symbol="EURUSD",
        type=side,
        volume=volume,
        price_open=1.08,
        price_current=1.08,
        sl=0.0,
        tp=0.0,
        profit=0.0,
        swap=0.0,
        magic=0,
        comment="",
        time=0,
    )


def test_a_place_is_checked_against_each_limit_like_an_open() -> None:
    monitor = RiskMonitor(
        RiskLimits(max_order_volume=1.0, symbols=["EURUSD"], require_stop_loss=True)
    )
    assert reason(monitor, place(symbol="GBPUSD", sl=1.07)) == "SYMBOL_NOT_ALLOWED"
    assert reason(monitor, place(volume=1.5, sl=1.07)) == "MAX_ORDER_VOLUME"
    assert reason(monitor, place(sl=None)) == "STOP_LOSS_REQUIRED"
    assert reason(monitor, place(sl=0.0)) == "STOP_LOSS_REQUIRED"  # 0 is "no level"
    assert monitor.exposure("EURUSD") == 0.0  # a refused order holds nothing
    monitor.check(place(volume=1.0, sl=1.07))
    assert monitor.exposure("EURUSD") == pytest.approx(1.0)


@pytest.mark.parametrize("kind", list(PendingType))
def test_max_symbol_volume_counts_a_place_on_its_types_side(kind: PendingType) -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=0.25), clock=clock)
    monitor.sync([position(1, Side.BUY, 0.2)], monitor.now())
    clock.now += 1
    if kind.side is Side.BUY:  # 0.2 + 0.1 is over the limit
        assert reason(monitor, place(kind, volume=0.1)) == "MAX_SYMBOL_VOLUME"
        assert monitor.exposure("EURUSD") == pytest.approx(0.2)
    else:  # 0.2 - 0.1 is within it
        monitor.check(place(kind, volume=0.1))
        assert monitor.exposure("EURUSD") == pytest.approx(0.1)


def test_a_place_with_a_plain_string_type_is_checked_on_its_side() -> None:
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=0.25))
    # As a node that builds its requests from text would.
    request = Place(
        uuid="a",
        timestamp=0.0,
        symbol="EURUSD",
        type="SELL_STOP",  # type: ignore[arg-type]
        volume=0.2,
        price=1.07,
    )
    monitor.check(request)
    assert monitor.exposure("EURUSD") == pytest.approx(-0.2)


def test_max_positions_counts_pending_orders() -> None:
    monitor = RiskMonitor(RiskLimits(max_positions=2))
    monitor.settle(monitor.check(place(uuid="a")), 50, pending=True)
    monitor.settle(monitor.check(market(uuid="b")), 11)
    assert reason(monitor, place(uuid="c")) == "MAX_POSITIONS"
    assert reason(monitor, market(uuid="c")) == "MAX_POSITIONS"
    monitor.cancelled(50)
    monitor.check(place(uuid="c"))


def test_a_placed_order_is_exposure_until_it_is_cancelled() -> None:
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=1.0))
    reservation = monitor.check(place(PendingType.SELL_LIMIT, volume=0.7, uuid="a"))
    monitor.settle(reservation, 50, pending=True)
    assert monitor.exposure("EURUSD") == pytest.approx(-0.7)  # placed, not in flight
    assert reason(monitor, place(PendingType.SELL_STOP, volume=0.4, uuid="b")) == (
        "MAX_SYMBOL_VOLUME"
    )
    monitor.cancelled(999)  # not one of ours: nothing changes
    assert monitor.exposure("EURUSD") == pytest.approx(-0.7)
    monitor.cancelled(50)
    assert monitor.exposure("EURUSD") == pytest.approx(0.0)
    monitor.cancelled(50)  # told twice: released once
    assert monitor.exposure("EURUSD") == pytest.approx(0.0)
    monitor.check(place(PendingType.SELL_STOP, volume=0.4, uuid="b"))


def test_a_place_that_was_not_placed_releases_its_exposure() -> None:
    monitor = RiskMonitor(RiskLimits(max_positions=1))
    monitor.settle(monitor.check(place(uuid="a")), None, pending=True)
    assert monitor.exposure("EURUSD") == 0.0
    monitor.check(place(uuid="b"))  # and it no longer counts as a position


def test_sync_with_orders_replaces_the_pending_book() -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_positions=3), clock=clock)
    monitor.settle(monitor.check(place(volume=0.5, uuid="a")), 50, pending=True)
    clock.now = 1001.0
    # The gateway's book: 50 is gone (cancelled by hand); a manual sell limit, partly filled.
    manual = pending(60, PendingType.SELL_LIMIT, 0.5, remaining=0.3)
    monitor.sync([], monitor.now(), orders=[manual])
    assert monitor.exposure("EURUSD") == pytest.approx(-0.3)  # what is still to fill
    clock.now = 1002.0
    monitor.settle(monitor.check(place(volume=0.2, uuid="b")), 51, pending=True)
    monitor.sync([], 1001.5, orders=[manual])  # asked before 51 was placed: 51 is kept
    assert monitor.exposure("EURUSD") == pytest.approx(-0.1)
    monitor.sync([], 1002.5)  # no orders given: the pending book stays as it is
    assert monitor.exposure("EURUSD") == pytest.approx(-0.1)
    monitor.check(market(uuid="c"))  # 60, 51 and c: three
    assert reason(monitor, market(uuid="d")) == "MAX_POSITIONS"
    monitor.sync([], 1003.0, orders=[])  # both gone; c is still in flight
    assert monitor.exposure("EURUSD") == pytest.approx(0.1)
    monitor.check(market(uuid="d"))


def test_a_filled_pending_order_is_a_position_and_not_counted_twice() -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_positions=2, max_symbol_volume=1.0), clock=clock)
    monitor.settle(monitor.check(place(volume=0.4, uuid="a")), 50, pending=True)
    clock.now += 1
    # It filled: a position with the order's ticket; the orders list read a moment earlier
    # still shows it pending.
    filled = position(50, Side.BUY, 0.4)
    monitor.sync([filled], monitor.now(), orders=[pending(50, PendingType.BUY_LIMIT, 0.4)])
    assert monitor.exposure("EURUSD") == pytest.approx(0.4)
    monitor.check(market(uuid="b"))  # one position so far: a second may open
    assert reason(monitor, market(uuid="c")) == "MAX_POSITIONS"  # 50 and b
    clock.now += 1
    monitor.sync([filled], monitor.now(), orders=[])
    assert monitor.exposure("EURUSD") == pytest.approx(0.5)  # 50, and b in flight
    monitor.closed(50, 0.4)
    assert monitor.exposure("EURUSD") == pytest.approx(0.1)


@pytest.mark.parametrize("shown_as", ["pending", "position"])
def test_a_placement_already_in_a_synced_book_is_not_counted_twice(shown_as: str) -> None:
    clock = Clock()
    monitor = RiskMonitor(RiskLimits(max_symbol_volume=10.0), clock=clock)
    reservation = monitor.check(place(volume=1.0, uuid="a"))
    clock.now += 1
    # The heartbeat's sync, asked after the PLACE went out, already shows the order.
    if shown_as == "pending":
        monitor.sync([], monitor.now(), orders=[pending(50, PendingType.BUY_LIMIT, 1.0)])
    else:
        monitor.sync([position(50, Side.BUY, 1.0)], monitor.now(), orders=[])
    monitor.settle(reservation, 50, pending=True)
    assert monitor.exposure("EURUSD") == pytest.approx(1.0)
