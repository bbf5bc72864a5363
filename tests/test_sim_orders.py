"""Pending orders, SL/TP and close-by: placed, modified, removed, and triggered by the prices.

The price path depends only on the seed and the ticks, so a twin terminal with the same seed,
stepped tick by tick, shows the future: tests place orders at levels the path will reach and
check that they fire at the tick that reaches them. Time is moved in steps of at most a minute,
below the walk's replay limit, so that every tick is scanned (a longer step jumps).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gtw_server.terminal import OrderSendResult, Tick
from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
BUY, SELL = 0, 1
BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP, BUY_STOP_LIMIT, SELL_STOP_LIMIT = range(2, 8)


@pytest.fixture
def mt5() -> Iterator[SimTerminal]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0
    ) as terminal:
        assert terminal.initialize()
        yield terminal


def future(seconds: float, symbol: str = "EURUSD") -> list[Tick]:
    """Every tick of the next ``seconds``: the tick history of a twin terminal with the same
    seed, that far ahead."""
    twin = SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0 + seconds
    )
    assert twin.initialize()
    rows = twin.copy_ticks_range(symbol, T0, T0 + seconds, twin.COPY_TICKS_ALL)
    assert rows is not None
    return [Tick(tuple(row.tolist())) for row in rows if row["time_msc"] > T0 * 1000]


def advance(mt5: SimTerminal, seconds: float) -> None:
    for _ in range(int(seconds // 60)):
        mt5.step(60)
        mt5.positions_total()  # any call makes the server catch up with the prices
    mt5.step(seconds % 60)
    mt5.positions_total()


def send(mt5: SimTerminal, **request: Any) -> OrderSendResult:
    result = mt5.order_send(request)
    assert result is not None, mt5.last_error()
    return result


def pending(mt5: SimTerminal, order_type: int, price: float, **extra: Any) -> OrderSendResult:
    request = {"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.1}
    return send(mt5, **request | {"type": order_type, "price": price} | extra)


def quote(mt5: SimTerminal) -> Tick:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    return tick


# -- placing, modifying, removing ------------------------------------------------------------


def test_a_placed_order_is_active_until_removed(mt5: SimTerminal) -> None:
    tick = quote(mt5)
    price = round(tick.ask - 0.005, 5)
    placed = pending(mt5, BUY_LIMIT, price, sl=price - 0.005, magic=9, comment="dip")
    assert (placed.retcode, placed.comment) == (10009, "Request executed")
    assert (placed.deal, placed.volume, placed.price, placed.bid, placed.ask) == (0, 0, 0, 0, 0)
    (order,) = mt5.orders_get() or ()
    assert (order.ticket, order.type, order.state) == (placed.order, BUY_LIMIT, 1)
    assert (order.price_open, order.sl, order.magic, order.comment) == (
        price,
        price - 0.005,
        9,
        "dip",
    )
    assert (order.volume_initial, order.volume_current) == (0.1, 0.1)
    assert order.price_current == tick.ask
    assert mt5.orders_total() == 1
    assert mt5.history_orders_total(0, T0 + 1) == 0  # active orders are not history yet

    removed = send(mt5, action=mt5.TRADE_ACTION_REMOVE, order=placed.order)
    assert (removed.retcode, removed.order) == (10009, placed.order)
    assert mt5.orders_get() == ()
    (canceled,) = mt5.history_orders_get(ticket=placed.order) or ()
    assert canceled.state == mt5.ORDER_STATE_CANCELED
    assert send(mt5, action=mt5.TRADE_ACTION_REMOVE, order=placed.order).retcode == 10013


def test_the_retcode_of_a_placed_order_can_be_the_documented_10008() -> None:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True, pending_retcode=10008),
        clock=lambda: T0,
    ) as mt5:
        assert mt5.initialize()
        placed = pending(mt5, BUY_LIMIT, round(quote(mt5).ask - 0.005, 5))
        assert (placed.retcode, placed.comment) == (10008, "Order placed")


@pytest.mark.parametrize(
    ("order_type", "offset", "retcode"),
    [
        (BUY_LIMIT, +0.001, 10015),  # a buy limit above the ask
        (SELL_LIMIT, -0.001, 10015),
        (BUY_STOP, -0.001, 10015),
        (SELL_STOP, +0.001, 10015),
        (BUY, -0.001, 10035),  # a market type is not a pending order
        (8, -0.001, 10035),
    ],
)
def test_a_pending_price_on_the_wrong_side_is_10015(
    mt5: SimTerminal, order_type: int, offset: float, retcode: int
) -> None:
    tick = quote(mt5)
    base = tick.ask if order_type % 2 == BUY else tick.bid
    assert pending(mt5, order_type, round(base + offset, 5)).retcode == retcode
    assert mt5.orders_total() == 0


def test_pending_stops_are_checked_against_the_order_price(mt5: SimTerminal) -> None:
    price = round(quote(mt5).ask - 0.005, 5)
    assert pending(mt5, BUY_LIMIT, price, sl=price + 0.001).retcode == 10016
    assert pending(mt5, BUY_LIMIT, price, tp=price - 0.001).retcode == 10016
    assert pending(mt5, BUY_LIMIT, price, sl=price - 0.001, tp=price + 0.001).retcode == 10009


def test_stop_limit_prices_and_filling(mt5: SimTerminal) -> None:
    tick = quote(mt5)
    stop = round(tick.ask + 0.002, 5)
    assert pending(mt5, BUY_STOP_LIMIT, stop, stoplimit=stop + 0.001).retcode == 10015
    assert pending(mt5, BUY_STOP_LIMIT, stop, stoplimit=stop - 0.001).retcode == 10009
    # RETURN is the pending orders' policy, in every execution mode.
    placed = pending(mt5, BUY_LIMIT, tick.ask - 0.002, type_filling=2)
    assert placed.retcode == 10009
    (order,) = mt5.orders_get(ticket=placed.order)
    assert order.type_filling == mt5.ORDER_FILLING_FOK  # Instant execution: FOK is used
    gold = mt5.symbol_info_tick("XAUUSD")
    assert gold is not None
    request = {"symbol": "XAUUSD", "type_filling": 2}  # RETURN, Market execution
    assert pending(mt5, BUY_LIMIT, gold.ask - 10, **request).retcode == 10009
    assert pending(mt5, BUY_STOP, gold.ask + 10, **request).retcode == 10009
    assert pending(mt5, BUY_STOP, gold.ask + 10, symbol="XAUUSD", type_filling=7).retcode == 10030


def test_expiration_rules(mt5: SimTerminal) -> None:
    price = round(quote(mt5).ask - 0.005, 5)
    past = {"type_time": mt5.ORDER_TIME_SPECIFIED, "expiration": int(T0) - 1}
    assert pending(mt5, BUY_LIMIT, price, **past).retcode == 10022
    assert pending(mt5, BUY_LIMIT, price, type_time=9).retcode == 10022
    day = pending(mt5, BUY_LIMIT, price, type_time=mt5.ORDER_TIME_DAY)
    soon = pending(mt5, BUY_LIMIT, price, type_time=2, expiration=int(T0) + 90)
    that_day = pending(mt5, BUY_LIMIT, price, type_time=3, expiration=int(T0) + 90)
    gtc = pending(mt5, BUY_LIMIT, price, expiration=int(T0) + 90)  # GTC ignores expiration
    end_of_day = (int(T0) // 86_400 + 1) * 86_400
    expirations = {o.ticket: o.time_expiration for o in mt5.orders_get() or ()}
    assert expirations == {
        day.order: end_of_day,
        soon.order: int(T0) + 90,
        that_day.order: end_of_day,
        gtc.order: 0,
    }
    advance(mt5, 120)
    assert {o.ticket for o in mt5.orders_get() or ()} == {day.order, that_day.order, gtc.order}
    (expired,) = mt5.history_orders_get(ticket=soon.order) or ()
    assert (expired.state, expired.time_done) == (mt5.ORDER_STATE_EXPIRED, int(T0) + 90)
    mt5.step(end_of_day - T0)
    assert [o.ticket for o in mt5.orders_get() or ()] == [gtc.order]


def test_modify_changes_an_order_and_says_when_nothing_changes(mt5: SimTerminal) -> None:
    price = round(quote(mt5).ask - 0.005, 5)
    placed = pending(mt5, BUY_LIMIT, price)
    change = {"action": mt5.TRADE_ACTION_MODIFY, "order": placed.order, "price": price - 0.001}
    modified = send(mt5, **change, sl=price - 0.01)
    assert (modified.retcode, modified.order) == (10009, placed.order)
    (order,) = mt5.orders_get() or ()
    assert (order.price_open, order.sl) == (price - 0.001, price - 0.01)
    assert send(mt5, **change, sl=price - 0.01).retcode == 10025
    assert send(mt5, **change | {"price": price + 0.01}).retcode == 10015
    assert send(mt5, **change | {"order": 1}).retcode == 10013


# -- triggering --------------------------------------------------------------------------------


def test_a_buy_limit_fills_at_the_tick_that_reaches_it_then_its_tp(mt5: SimTerminal) -> None:
    ticks = future(1800)  # a quiet half hour, around the rollover
    for cut in range(1, len(ticks)):  # the first dip that the bid later rises above
        low = min(t.ask for t in ticks[:cut])
        reached = next(t for t in ticks if t.ask <= low)
        high = max((t.bid for t in ticks if t.time_msc > reached.time_msc), default=0.0)
        if high > low:
            break
    else:
        pytest.fail("no dip and rise in this half hour: choose another seed")
    placed = pending(mt5, BUY_LIMIT, low, tp=high, magic=5, comment="dip")
    advance(mt5, 1800)
    assert mt5.orders_get() == ()
    (opening, closing) = mt5.history_deals_get(position=placed.order) or ()
    assert (opening.order, opening.time_msc, opening.price) == (placed.order, reached.time_msc, low)
    assert (opening.entry, opening.reason, opening.magic, opening.comment) == (0, 3, 5, "dip")
    took = next(t for t in ticks if t.time_msc > reached.time_msc and t.bid >= high)
    assert (closing.time_msc, closing.price, closing.reason) == (took.time_msc, took.bid, 5)
    assert closing.comment == f"[tp {high:.5f}]"
    assert closing.entry == mt5.DEAL_ENTRY_OUT
    assert closing.order != placed.order
    (filled,) = mt5.history_orders_get(ticket=placed.order) or ()
    assert (filled.state, filled.position_id, filled.volume_current) == (4, placed.order, 0.0)
    (tp_order,) = mt5.history_orders_get(ticket=closing.order) or ()
    assert (tp_order.reason, tp_order.comment, tp_order.type) == (5, closing.comment, SELL)
    assert tp_order.magic == 5


def test_a_sell_stop_and_a_stop_loss(mt5: SimTerminal) -> None:
    ticks = future(600)
    low = min(t.bid for t in ticks)
    start = quote(mt5)
    hit = next(t for t in ticks if t.bid <= low)
    high_after = max(t.ask for t in ticks if t.time_msc > hit.time_msc)
    placed = pending(mt5, SELL_STOP, low, sl=high_after)
    assert start.bid > low
    advance(mt5, 600)
    deals = mt5.history_deals_get(position=placed.order) or ()
    assert deals[0].price == hit.bid  # a stop fills at the market
    assert deals[0].type == mt5.DEAL_TYPE_SELL
    stopped = next(t for t in ticks if t.time_msc > hit.time_msc and t.ask >= high_after)
    assert (deals[1].time_msc, deals[1].reason) == (stopped.time_msc, mt5.DEAL_REASON_SL)
    assert deals[1].comment == f"[sl {high_after:.5f}]"
    assert deals[1].profit == round((hit.bid - stopped.ask) * 10_000, 2)


def test_a_stop_limit_becomes_a_limit_order_with_the_same_ticket(mt5: SimTerminal) -> None:
    ticks = future(600)
    start = quote(mt5)
    stop = round(start.ask + 0.0001, 5)
    activated = next(t for t in ticks if t.ask >= stop)
    limit = min(t.ask for t in ticks if t.time_msc > activated.time_msc)
    assert limit < stop
    placed = pending(mt5, BUY_STOP_LIMIT, stop, stoplimit=limit)
    advance(mt5, (activated.time_msc - T0 * 1000) / 1000)
    (order,) = mt5.orders_get() or ()
    assert (order.ticket, order.type, order.price_open) == (placed.order, BUY_LIMIT, limit)
    advance(mt5, 600 - (activated.time_msc - T0 * 1000) / 1000)
    (filled,) = mt5.history_deals_get(ticket=placed.order) or ()
    assert filled.price == limit


def test_sltp_sets_and_removes_levels(mt5: SimTerminal) -> None:
    tick = quote(mt5)
    opened = send(
        mt5, action=1, symbol="EURUSD", volume=0.1, type=BUY, price=tick.ask, deviation=10
    )
    levels = {"sl": round(tick.bid - 0.001, 5), "tp": round(tick.bid + 0.001, 5)}
    request = {"action": mt5.TRADE_ACTION_SLTP, "symbol": "EURUSD", "position": opened.order}
    result = send(mt5, **request, **levels)
    assert (result.retcode, result.deal, result.order, result.bid, result.ask) == (
        10009,
        0,
        0,
        0,
        0,
    )
    (position,) = mt5.positions_get() or ()
    assert (position.sl, position.tp) == (levels["sl"], levels["tp"])
    assert send(mt5, **request, **levels).retcode == 10025
    assert send(mt5, **request, sl=tick.bid + 0.001, tp=0.0).retcode == 10016
    assert send(mt5, **request, sl=0.0, tp=0.0).retcode == 10009  # 0 removes a level
    assert send(mt5, **request | {"position": 1}, sl=0.0, tp=0.0).retcode == 10036
    assert send(mt5, **request | {"symbol": "GBPUSD"}, sl=0.0, tp=0.0).retcode == 10013
    (position,) = mt5.positions_get() or ()
    assert (position.sl, position.tp) == (0.0, 0.0)


def test_no_money_when_a_pending_order_triggers_rejects_it() -> None:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True, balance=100), clock=lambda: T0
    ) as mt5:
        assert mt5.initialize()
        placed = pending(mt5, BUY_STOP, round(quote(mt5).ask, 5), volume=5.0)
        assert placed.retcode == 10009  # no margin is held for pending orders
        advance(mt5, 60)
        (order,) = mt5.history_orders_get(ticket=placed.order) or ()
        assert order.state == mt5.ORDER_STATE_REJECTED
        assert mt5.positions_total() == 0


# -- close by ----------------------------------------------------------------------------------


def test_close_by_closes_both_at_the_opposite_open_price(mt5: SimTerminal) -> None:
    tick = quote(mt5)
    market = {"action": 1, "symbol": "EURUSD", "deviation": 50}
    long = send(mt5, **market, volume=1.0, type=BUY, price=tick.ask)
    mt5.step(120)
    later = quote(mt5)
    short = send(mt5, **market, volume=0.4, type=SELL, price=later.bid)
    result = send(
        mt5,
        action=mt5.TRADE_ACTION_CLOSE_BY,
        position=long.order,
        position_by=short.order,
        comment="net",
    )
    assert (result.retcode, result.volume, result.price) == (10009, 0.4, short.price)
    (remaining,) = mt5.positions_get() or ()
    assert (remaining.ticket, remaining.volume) == (long.order, 0.6)
    (order,) = mt5.history_orders_get(ticket=result.order) or ()
    assert (order.type, order.position_id, order.position_by_id) == (8, long.order, short.order)
    first, second = mt5.history_deals_get(ticket=result.order) or ()
    assert (first.entry, second.entry) == (mt5.DEAL_ENTRY_OUT_BY, mt5.DEAL_ENTRY_OUT_BY)
    assert (first.position_id, second.position_id) == (long.order, short.order)
    assert first.profit == round((short.price - long.price) * 100_000 * 0.4, 2)
    assert second.profit == 0.0  # no spread is paid: it closes at its own open price
    bad = {"action": mt5.TRADE_ACTION_CLOSE_BY, "position": long.order}
    assert send(mt5, **bad, position_by=long.order).retcode == 10013
    assert send(mt5, **bad, position_by=short.order).retcode == 10036


def test_float_noise_in_a_price_stop_or_limit_is_refused_as_trade_servers_do(
    mt5: SimTerminal,
) -> None:
    tick = quote(mt5)
    noisy_sl = round(tick.bid - 0.005, 5) - 1e-10  # 1.0849999999 where 1.085 was meant
    deal = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "type": BUY}
    deal |= {"price": tick.ask, "deviation": 10}
    assert send(mt5, **deal, sl=noisy_sl).retcode == mt5.TRADE_RETCODE_INVALID_STOPS
    assert send(mt5, **deal | {"price": tick.ask + 3e-10}).retcode == 10015  # Instant: priced
    limit = round(tick.ask - 0.005, 5)
    assert pending(mt5, BUY_LIMIT, limit + 2e-9).retcode == mt5.TRADE_RETCODE_INVALID_PRICE
    stop = round(tick.ask + 0.005, 5)
    stop_limit = pending(mt5, BUY_STOP_LIMIT, stop, stoplimit=stop - 0.002 + 4e-10)
    assert stop_limit.retcode == mt5.TRADE_RETCODE_INVALID_PRICE
    assert pending(mt5, BUY_LIMIT, limit, tp=limit + 0.003 - 1e-10).retcode == 10016
    assert mt5.positions_total() == mt5.orders_total() == 0  # nothing was taken
    # The doubles nearest to whole ticks pass, however they were computed.
    sl = tick.bid - 0.005  # e.g. 1.0950499999999999: a double's rounding, not noise
    assert send(mt5, **deal, sl=sl).retcode == mt5.TRADE_RETCODE_DONE
    assert pending(mt5, BUY_LIMIT, limit, tp=limit + 0.003).retcode == mt5.TRADE_RETCODE_DONE
