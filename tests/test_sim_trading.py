"""Market deals on a hedging account: fills, history, money, and every refusal's retcode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gtw_server.terminal import OrderSendResult, TradePosition
from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
BUY, SELL = 0, 1
FOK, IOC, RETURN = 0, 1, 2


@pytest.fixture
def mt5() -> Iterator[SimTerminal]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0
    ) as terminal:
        assert terminal.initialize()
        yield terminal


def market(mt5: SimTerminal, symbol: str, side: int, volume: float, **extra: Any) -> dict[str, Any]:
    """A DEAL request at the current price, as MetaQuotes' examples build it."""
    mt5.symbol_select(symbol, True)
    tick = mt5.symbol_info_tick(symbol)
    assert tick is not None
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == BUY else tick.bid,
        "deviation": 10,
        "type_filling": IOC if symbol == "US500" else FOK,
    }
    return request | extra


def send(mt5: SimTerminal, request: dict[str, Any]) -> OrderSendResult:
    result = mt5.order_send(request)
    assert result is not None, mt5.last_error()
    return result


def filled(
    mt5: SimTerminal, symbol: str, side: int, volume: float, **extra: Any
) -> OrderSendResult:
    result = send(mt5, market(mt5, symbol, side, volume, **extra))
    assert result.retcode == mt5.TRADE_RETCODE_DONE, result
    return result


def position(mt5: SimTerminal, ticket: int) -> TradePosition:
    (found,) = mt5.positions_get(ticket=ticket) or ()
    return found


def balance(mt5: SimTerminal) -> float:
    account = mt5.account_info()
    assert account is not None
    return account.balance


def test_hedging_open_add_partial_close_and_close(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", BUY, 1.0, magic=42, comment="open")
    ask0 = opened.ask
    assert (opened.price, opened.volume, opened.comment) == (ask0, 1.0, "Request executed")
    assert opened.deal and opened.order and opened.deal != opened.order
    first = position(mt5, opened.order)  # a position takes its opening order's ticket
    assert (first.identifier, first.type, first.volume, first.price_open) == (
        opened.order,
        mt5.POSITION_TYPE_BUY,
        1.0,
        ask0,
    )
    assert (first.magic, first.comment, first.reason) == (42, "open", mt5.POSITION_REASON_EXPERT)
    assert first.price_current == opened.bid  # a buy is valued at the bid
    assert first.profit == round((opened.bid - ask0) * 100_000, 2)

    added = filled(mt5, "EURUSD", BUY, 0.5)
    assert added.order != opened.order
    assert mt5.positions_total() == 2  # hedging: a second position, not a bigger one

    mt5.step(600)
    part = filled(mt5, "EURUSD", SELL, 0.4, position=opened.order, magic=7, comment="part")
    assert part.price == part.bid  # a buy is closed at the bid
    part_profit = round((part.price - ask0) * 100_000 * 0.4, 2)
    assert balance(mt5) == round(10_000 + part_profit, 2)
    rest = position(mt5, opened.order)
    assert (rest.volume, rest.price_open, rest.time) == (0.6, ask0, int(T0))
    assert rest.time_update == int(T0) + 600

    mt5.step(600)
    closed = filled(mt5, "EURUSD", SELL, 0.6, position=opened.order)
    close_profit = round((closed.price - ask0) * 100_000 * 0.6, 2)
    assert balance(mt5) == round(10_000 + part_profit + close_profit, 2)
    assert mt5.positions_get(ticket=opened.order) == ()
    assert [p.ticket for p in mt5.positions_get() or ()] == [added.order]

    deals = mt5.history_deals_get(position=opened.order) or ()
    assert [(d.entry, d.type, d.volume) for d in deals] == [
        (mt5.DEAL_ENTRY_IN, mt5.DEAL_TYPE_BUY, 1.0),
        (mt5.DEAL_ENTRY_OUT, mt5.DEAL_TYPE_SELL, 0.4),
        (mt5.DEAL_ENTRY_OUT, mt5.DEAL_TYPE_SELL, 0.6),
    ]
    assert [d.profit for d in deals] == [0.0, part_profit, close_profit]
    assert [(d.magic, d.comment) for d in deals] == [(42, "open"), (7, "part"), (0, "")]
    assert {d.reason for d in deals} == {mt5.DEAL_REASON_EXPERT}
    assert [d.order for d in deals] == [opened.order, part.order, closed.order]
    assert [d.ticket for d in deals] == [opened.deal, part.deal, closed.deal]

    orders = mt5.history_orders_get(position=opened.order) or ()
    assert [o.ticket for o in orders] == [opened.order, part.order, closed.order]
    assert {o.state for o in orders} == {mt5.ORDER_STATE_FILLED}
    assert {o.reason for o in orders} == {mt5.ORDER_REASON_EXPERT}
    assert [(o.volume_initial, o.volume_current) for o in orders] == [
        (1.0, 0.0),
        (0.4, 0.0),
        (0.6, 0.0),
    ]
    assert mt5.history_deals_total(0, T0 + 3600) == 5  # the opening deposit, then 4 trades


def test_a_sell_is_valued_and_closed_at_the_ask(mt5: SimTerminal) -> None:
    opened = filled(mt5, "GBPUSD", SELL, 0.3)
    assert opened.price == opened.bid
    mt5.step(3600)
    tick = mt5.symbol_info_tick("GBPUSD")
    assert tick is not None
    held = position(mt5, opened.order)
    assert held.price_current == tick.ask
    assert held.profit == round((opened.price - tick.ask) * 100_000 * 0.3, 2)
    closed = filled(mt5, "GBPUSD", BUY, 0.3, position=opened.order)
    assert closed.price == tick.ask
    assert balance(mt5) == round(10_000 + held.profit, 2)


def test_account_figures_follow_the_reference_formulas(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", BUY, 1.0)
    mt5.step(1800)
    account = mt5.account_info()
    tick = mt5.symbol_info_tick("EURUSD")
    assert account is not None and tick is not None
    assert account.profit == round((tick.bid - opened.price) * 100_000, 2)
    assert account.equity == round(account.balance + account.credit + account.profit, 2)
    # FOREX margin: lots * contract / leverage in EUR, converted at EURUSD (the ask, a buy).
    assert account.margin == round(100_000 / 100 * tick.ask, 2)
    assert account.margin_free == round(account.equity - account.margin, 2)
    assert account.margin_level == pytest.approx(account.equity / account.margin * 100)


def test_usdjpy_profit_and_margin_are_converted_to_usd(mt5: SimTerminal) -> None:
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "USDJPY", 1.0, 150.0) == 1000.0
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "USDJPY", 1.0, 150.0, 151.0) == round(
        100_000 / 151.0, 2
    )
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_SELL, "USDJPY", 0.5, 150.0, 151.0) == round(
        -50_000 / 151.0, 2
    )
    opened = filled(mt5, "USDJPY", BUY, 1.0)
    account = mt5.account_info()
    assert account is not None
    assert account.margin == 1000.0  # the margin currency is USD: no conversion
    mt5.step(3600)
    closed = filled(mt5, "USDJPY", SELL, 1.0, position=opened.order)
    jpy = (closed.price - opened.price) * 100_000
    deal = (mt5.history_deals_get(ticket=closed.order) or ())[0]
    assert deal.profit == round(jpy / closed.price, 2)
    assert balance(mt5) == round(10_000 + deal.profit, 2)
    info = mt5.symbol_info("USDJPY")
    assert info is not None
    assert info.trade_tick_value == pytest.approx(100 / info.bid)


def test_eurusd_margin_matches_the_documented_example(mt5: SimTerminal) -> None:
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1, 1.1) == 1100.0
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1, 1.1010) == 100.0


def test_eur_index_is_converted_through_eurusd(mt5: SimTerminal) -> None:
    opened = filled(mt5, "GER40", BUY, 1.0)
    eurusd = mt5.symbol_info_tick("EURUSD")
    held = position(mt5, opened.order)
    account = mt5.account_info()
    assert eurusd is not None and account is not None
    assert held.profit == round((held.price_current - opened.price) * eurusd.bid, 2)
    assert account.margin == round(opened.ask / 100 * eurusd.bid, 2)


def test_hedged_legs_are_charged_margin_hedged(mt5: SimTerminal) -> None:
    long = filled(mt5, "US500", BUY, 1.0)
    account = mt5.account_info()
    assert account is not None
    assert account.margin == round(long.ask / 100, 2)
    filled(mt5, "US500", SELL, 1.0)
    account = mt5.account_info()
    assert account is not None
    # margin_hedged 0.5 of a contract of 1: each covered leg pays half.
    assert account.margin == round((long.ask + long.bid) / 100 * 0.5, 2)


# -- refusals ------------------------------------------------------------------------------


def refused(mt5: SimTerminal, request: dict[str, Any], retcode: int, comment: str) -> None:
    """The request is refused with ``retcode`` and changes nothing."""
    deals_before = mt5.history_deals_total(0, T0 + 86_400)
    positions_before = mt5.positions_get()
    result = send(mt5, request)
    assert (result.retcode, result.comment) == (retcode, comment)
    assert (result.deal, result.order, result.volume, result.price) == (0, 0, 0.0, 0.0)
    assert mt5.last_error() == (1, "Success")
    assert mt5.positions_get() == positions_before
    assert mt5.history_deals_total(0, T0 + 86_400) == deals_before


@pytest.mark.parametrize(
    ("symbol", "volume"),
    [("EURUSD", 0.001), ("EURUSD", 501.0), ("EURUSD", 0.015), ("US500", 0.05), ("US500", 0.15)],
)
def test_volume_outside_min_max_or_step_is_10014(
    mt5: SimTerminal, symbol: str, volume: float
) -> None:
    refused(mt5, market(mt5, symbol, BUY, volume), 10014, "Invalid volume")


@pytest.mark.parametrize(
    ("symbol", "filling"),
    [("US500", FOK), ("XAUUSD", RETURN), ("GER40", RETURN), ("EURUSD", 7)],
)
def test_a_filling_mode_the_symbol_does_not_allow_is_10030(
    mt5: SimTerminal, symbol: str, filling: int
) -> None:
    mt5.symbol_select(symbol, True)
    refused(
        mt5, market(mt5, symbol, BUY, 1.0, type_filling=filling), 10030, "Unsupported filling mode"
    )


@pytest.mark.parametrize("filling", [FOK, IOC, RETURN])
def test_instant_execution_fills_fill_or_kill_whatever_the_request_says(
    mt5: SimTerminal, filling: int
) -> None:
    # "In the Request and Instant execution modes the Fill or Kill policy is always used":
    # the documentation's own order_send example sends RETURN on an Instant-execution pair.
    result = send(mt5, market(mt5, "EURUSD", BUY, 1.0, type_filling=filling))
    assert result.retcode == mt5.TRADE_RETCODE_DONE
    (order,) = mt5.history_orders_get(ticket=result.order)
    assert order.type_filling == FOK  # what the server used


def test_a_request_without_type_filling_is_fok(mt5: SimTerminal) -> None:
    request = market(mt5, "US500", BUY, 1.0)
    del request["type_filling"]
    refused(mt5, request, 10030, "Unsupported filling mode")  # US500 fills IOC only
    xau = market(mt5, "XAUUSD", BUY, 0.1)
    del xau["type_filling"]
    assert send(mt5, xau).retcode == mt5.TRADE_RETCODE_DONE


def test_stops_on_the_wrong_side_or_too_near_are_10016(mt5: SimTerminal) -> None:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    refused(mt5, market(mt5, "EURUSD", BUY, 0.1, sl=tick.bid + 0.001), 10016, "Invalid stops")
    refused(mt5, market(mt5, "EURUSD", BUY, 0.1, tp=tick.bid - 0.001), 10016, "Invalid stops")
    refused(mt5, market(mt5, "EURUSD", SELL, 0.1, sl=tick.ask - 0.001), 10016, "Invalid stops")
    refused(mt5, market(mt5, "EURUSD", SELL, 0.1, tp=tick.ask + 0.001), 10016, "Invalid stops")
    index = mt5.symbol_info_tick("US500")
    assert index is not None  # US500 has a stops level of 50 points (0.50)
    refused(mt5, market(mt5, "US500", BUY, 1.0, sl=index.bid - 0.3), 10016, "Invalid stops")
    good = filled(mt5, "US500", BUY, 1.0, sl=index.bid - 0.6, tp=index.bid + 0.6)
    held = position(mt5, good.order)
    assert (held.sl, held.tp) == (index.bid - 0.6, index.bid + 0.6)


def test_not_enough_free_margin_is_10019(mt5: SimTerminal) -> None:
    refused(mt5, market(mt5, "EURUSD", BUY, 100.0), 10019, "No money")
    check = mt5.order_check(market(mt5, "EURUSD", BUY, 100.0))
    assert check is not None
    assert (check.retcode, check.comment) == (10019, "No money")
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None  # 100 lots of 100,000 euros at 1:100
    assert check.margin == pytest.approx(100 * 100_000 * tick.ask / 100, rel=0.001)
    assert check.margin_free < 0


def test_closing_an_unknown_or_closed_position_is_10036(mt5: SimTerminal) -> None:
    refused(mt5, market(mt5, "EURUSD", SELL, 0.1, position=123), 10036, "Position doesn't exist")
    opened = filled(mt5, "EURUSD", BUY, 0.1)
    filled(mt5, "EURUSD", SELL, 0.1, position=opened.order)
    refused(
        mt5,
        market(mt5, "EURUSD", SELL, 0.1, position=opened.order),
        10036,
        "Position doesn't exist",
    )


def test_closing_more_than_the_position_is_10038(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", BUY, 1.0)
    refused(
        mt5, market(mt5, "EURUSD", SELL, 1.01, position=opened.order), 10038, "Invalid close volume"
    )
    assert position(mt5, opened.order).volume == 1.0


def test_closing_with_the_same_direction_or_symbol_mismatch_is_10013(mt5: SimTerminal) -> None:
    opened = filled(mt5, "EURUSD", BUY, 1.0)
    refused(mt5, market(mt5, "EURUSD", BUY, 1.0, position=opened.order), 10013, "Invalid request")
    refused(mt5, market(mt5, "GBPUSD", SELL, 1.0, position=opened.order), 10013, "Invalid request")


def test_unknown_symbol_and_order_type(mt5: SimTerminal) -> None:
    request = market(mt5, "EURUSD", BUY, 0.1)
    refused(mt5, request | {"symbol": "NOPE"}, 10013, "Invalid request")
    refused(mt5, request | {"type": mt5.ORDER_TYPE_BUY_LIMIT}, 10035, "Invalid order type")
    refused(mt5, request | {"action": 99}, 10013, "Invalid request")


def test_instant_execution_needs_a_price_within_deviation(mt5: SimTerminal) -> None:
    request = market(mt5, "EURUSD", BUY, 0.1)
    refused(mt5, request | {"price": 0.0}, 10015, "Invalid price")
    stale = request | {"price": request["price"] - 0.0002, "deviation": 10}
    result = send(mt5, stale)
    assert (result.retcode, result.comment, result.deal, result.order) == (10004, "Requote", 0, 0)
    assert (result.bid, result.ask) != (0.0, 0.0)  # a requote carries the current quotes
    assert send(mt5, stale | {"deviation": 25}).retcode == mt5.TRADE_RETCODE_DONE


def test_market_execution_ignores_the_price(mt5: SimTerminal) -> None:
    result = send(mt5, market(mt5, "XAUUSD", BUY, 0.1, price=0.0))
    assert result.retcode == mt5.TRADE_RETCODE_DONE
    assert result.price == result.ask


def test_order_check_projects_the_account_without_trading(mt5: SimTerminal) -> None:
    check = mt5.order_check(market(mt5, "EURUSD", BUY, 1.0))
    assert check is not None
    assert (check.retcode, check.comment) == (0, "Done")
    assert check.balance == 10_000.0
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None and check.margin == pytest.approx(1000 * tick.ask, rel=0.001)
    assert check.profit < 0  # the spread is paid at once
    assert check.equity == round(check.balance + check.profit, 2)
    assert check.margin_free == round(check.equity - check.margin, 2)
    assert check.request.volume == 1.0
    assert mt5.positions_total() == 0
    assert mt5.history_deals_total(0, T0 + 1) == 1  # the opening deposit alone
    invalid = mt5.order_check(market(mt5, "EURUSD", BUY, 0.001))
    assert invalid is not None
    assert (invalid.retcode, invalid.comment, invalid.balance) == (10014, "Invalid volume", 0.0)
