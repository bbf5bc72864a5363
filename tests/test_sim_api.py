"""The simulated terminal's call conventions and ``last_error`` behave like the real package's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gtw_server.terminal import Tick, TradeRequest
from gtw_server.terminal.sim import SimConfig, SimTerminal

T0 = 1_700_000_000.0
NO_IPC = (-10004, "No IPC connection")
SUCCESS = (1, "Success")
NOT_FOUND = (-4, "Terminal: Not found")
UNNAMED = (-2, "Unnamed arguments not allowed")


@pytest.fixture
def mt5() -> Iterator[SimTerminal]:
    with SimTerminal(
        config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0
    ) as terminal:
        assert terminal.initialize()
        yield terminal


def buy_request(mt5: SimTerminal, **changes: Any) -> dict[str, Any]:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": mt5.ORDER_TYPE_BUY,
        "price": tick.ask,
        "deviation": 10,
    }
    return request | changes


# Every call that needs a connection, with the value it returns on failure.
CALLS: list[tuple[str, Callable[[SimTerminal], object], object]] = [
    ("version", lambda t: t.version(), None),
    ("terminal_info", lambda t: t.terminal_info(), None),
    ("account_info", lambda t: t.account_info(), None),
    ("symbols_total", lambda t: t.symbols_total(), None),
    ("symbols_get", lambda t: t.symbols_get(), None),
    ("symbol_info", lambda t: t.symbol_info("EURUSD"), None),
    ("symbol_info_tick", lambda t: t.symbol_info_tick("EURUSD"), None),
    ("symbol_select", lambda t: t.symbol_select("EURUSD", True), False),
    ("positions_total", lambda t: t.positions_total(), None),
    ("positions_get", lambda t: t.positions_get(), None),
    ("orders_total", lambda t: t.orders_total(), None),
    ("orders_get", lambda t: t.orders_get(), None),
    ("history_orders_total", lambda t: t.history_orders_total(0, T0), None),
    ("history_orders_get", lambda t: t.history_orders_get(0, T0), None),
    ("history_deals_total", lambda t: t.history_deals_total(0, T0), None),
    ("history_deals_get", lambda t: t.history_deals_get(0, T0), None),
    ("order_calc_margin", lambda t: t.order_calc_margin(0, "EURUSD", 1.0, 1.1), None),
    ("order_calc_profit", lambda t: t.order_calc_profit(0, "EURUSD", 1.0, 1.1, 1.2), None),
    ("order_check", lambda t: t.order_check({"action": 1}), None),
    ("order_send", lambda t: t.order_send({"action": 1}), None),
]


def test_last_error_is_empty_before_any_call() -> None:
    assert SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True)).last_error() == (
        0,
        "",
    )


@pytest.mark.parametrize(("name", "call", "failure"), CALLS, ids=[c[0] for c in CALLS])
def test_every_call_fails_with_no_ipc_before_initialize_and_after_shutdown(
    name: str, call: Callable[[SimTerminal], object], failure: object
) -> None:
    mt5 = SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0)
    assert call(mt5) is failure
    assert mt5.last_error() == NO_IPC
    assert mt5.initialize() is True
    assert mt5.last_error() == SUCCESS
    assert call(mt5) is not failure
    assert mt5.shutdown() is True
    assert call(mt5) is failure
    assert mt5.last_error() == NO_IPC


def test_shutdown_returns_true_even_without_a_connection() -> None:
    mt5 = SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True))
    assert mt5.shutdown() is True
    assert mt5.shutdown() is True


def test_a_good_call_resets_last_error_to_success(mt5: SimTerminal) -> None:
    assert mt5.symbol_info("NOPE") is None
    assert mt5.last_error() == NOT_FOUND
    assert mt5.last_error() == NOT_FOUND  # reading it changes nothing
    assert mt5.symbols_total() == 6
    assert mt5.last_error() == SUCCESS


def test_initialize_refuses_another_server_and_then_stays_disconnected() -> None:
    mt5 = SimTerminal(config=SimConfig(server_timezone="UTC", always_open=True), clock=lambda: T0)
    assert mt5.initialize(server="Broker-Live") is False  # not this account's server
    assert mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.account_info() is None
    assert mt5.last_error() == NO_IPC
    assert mt5.initialize("C:\\terminal64.exe", login=5_000_001, server="SimBroker-Demo")
    account = mt5.account_info()
    assert account is not None
    assert (account.login, account.server) == (5_000_001, "SimBroker-Demo")


def test_any_account_logs_in_with_its_own_book_kept_apart(tmp_path: Path) -> None:
    # A script written for the trader's real account runs as it is: the simulated broker
    # opens that account the first time, and keeps each account's positions to itself.
    state = tmp_path / "sim.sqlite3"
    with SimTerminal(
        state_path=state,
        config=SimConfig(server_timezone="UTC", always_open=True),
        clock=lambda: T0,
    ) as mt5:
        assert mt5.initialize(login=81234567, password="secret", server="MyBroker-Live")
        mine = mt5.account_info()
        assert (mine.login, mine.server, mine.balance) == (81234567, "MyBroker-Live", 10_000.0)
        assert mt5.Buy("EURUSD", 0.1).retcode == mt5.TRADE_RETCODE_DONE
        assert mt5.login(5_000_001)  # the first account: nothing of the other's
        assert mt5.positions_total() == 0
        assert mt5.login(81234567, server="Elsewhere") is False  # known on another server
        assert mt5.last_error() == (-6, "Terminal: Authorization failed")
        assert mt5.login(81234567) and mt5.positions_total() == 1
    assert (tmp_path / "sim.81234567.sqlite3").exists()  # its own state, beside the first
    with SimTerminal(
        state_path=state,
        config=SimConfig(server_timezone="UTC", always_open=True),
        clock=lambda: T0,
    ) as again:
        assert again.initialize(login=81234567, server="MyBroker-Live")
        assert again.positions_total() == 1  # kept across a restart


def test_version_and_terminal_info(mt5: SimTerminal) -> None:
    version = mt5.version()
    info = mt5.terminal_info()
    assert version is not None and info is not None
    assert version[0] == 500
    assert version[1] == info.build
    assert isinstance(version[2], str)
    assert info.connected is True
    assert info.trade_allowed is True
    assert info.tradeapi_disabled is False


def test_the_default_account_is_a_usd_hedging_demo(mt5: SimTerminal) -> None:
    account = mt5.account_info()
    assert account is not None
    assert (account.currency, account.balance, account.leverage) == ("USD", 10_000.0, 100)
    assert account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    assert account.trade_mode == mt5.ACCOUNT_TRADE_MODE_DEMO
    assert (account.equity, account.margin, account.margin_free) == (10_000.0, 0.0, 10_000.0)
    assert account.margin_level == 0.0
    assert isinstance(account.margin, float)


def test_positional_only_functions_refuse_keywords(mt5: SimTerminal) -> None:
    with pytest.raises(TypeError):
        mt5.symbol_info(symbol="EURUSD")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        mt5.symbol_select("EURUSD", enable=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        mt5.history_deals_total(date_from=0, date_to=T0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        mt5.order_calc_margin(action=0, symbol="EURUSD", volume=1.0, price=1.1)  # type: ignore[call-arg]


@pytest.mark.parametrize("function", ["positions_get", "orders_get"])
def test_positions_and_orders_get_refuse_positional_arguments(
    mt5: SimTerminal, function: str
) -> None:
    assert getattr(mt5, function)("EURUSD") is None
    assert mt5.last_error() == UNNAMED


def test_positions_get_unknown_ticket_is_empty_and_successful(mt5: SimTerminal) -> None:
    assert mt5.positions_get(ticket=123) == ()
    assert mt5.last_error() == SUCCESS
    assert mt5.orders_get() == ()
    assert mt5.orders_total() == 0


def test_positions_get_precedence_is_ticket_then_symbol_then_group(mt5: SimTerminal) -> None:
    first = mt5.order_send(buy_request(mt5))
    assert first is not None
    tick = mt5.symbol_info_tick("USDJPY")
    assert tick is not None
    mt5.order_send(buy_request(mt5, symbol="USDJPY", price=tick.ask))
    by_ticket = mt5.positions_get(ticket=first.order, symbol="USDJPY", group="*JPY*")
    assert [p.ticket for p in by_ticket or ()] == [first.order]
    by_symbol = mt5.positions_get(symbol="EURUSD", group="*JPY*")
    assert [p.symbol for p in by_symbol or ()] == ["EURUSD"]
    by_group = mt5.positions_get(group="*JPY*")
    assert [p.symbol for p in by_group or ()] == ["USDJPY"]
    assert len(mt5.positions_get() or ()) == mt5.positions_total() == 2


def test_filters_of_the_wrong_type_are_invalid_arguments(mt5: SimTerminal) -> None:
    assert mt5.positions_get(symbol=1) is None  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, 'Invalid "symbol" argument')
    assert mt5.positions_get(ticket="1") is None  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, 'Invalid "ticket" argument')


def test_symbols(mt5: SimTerminal) -> None:
    names = [info.name for info in mt5.symbols_get() or ()]
    assert names == ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "GER40"]
    assert mt5.symbols_total() == len(names)
    assert [s.name for s in mt5.symbols_get("*USD*,!EUR*") or ()] == [
        "GBPUSD",
        "USDJPY",
        "XAUUSD",
    ]
    assert [s.name for s in mt5.symbols_get(group="*,!*USD*") or ()] == ["US500", "GER40"]


def test_eurusd_has_the_recorded_metaquotes_demo_properties(mt5: SimTerminal) -> None:
    info = mt5.symbol_info("EURUSD")
    assert info is not None
    assert (info.digits, info.point, info.spread_float) == (5, 1e-05, True)
    assert (info.trade_mode, info.trade_exemode, info.trade_stops_level) == (4, 1, 0)
    assert (info.filling_mode, info.expiration_mode, info.order_mode) == (1, 15, 127)
    assert (info.volume_min, info.volume_max, info.volume_step) == (0.01, 500.0, 0.01)
    assert (info.trade_contract_size, info.margin_hedged) == (100_000.0, 100_000.0)
    assert (info.currency_base, info.currency_profit, info.currency_margin) == (
        "EUR",
        "USD",
        "EUR",
    )
    assert info.trade_tick_value == pytest.approx(1.0)
    assert info.ask > info.bid
    assert info.spread == round((info.ask - info.bid) / info.point)


def test_an_unselected_symbol_has_no_info_and_no_tick_until_selected(mt5: SimTerminal) -> None:
    listed = {s.name: s for s in mt5.symbols_get() or ()}["GER40"]
    assert listed.select is False and listed.visible is False  # listed, as not selected
    assert mt5.symbol_info("GER40") is None
    assert mt5.last_error() == NOT_FOUND
    assert mt5.symbol_info_tick("GER40") is None
    assert mt5.last_error() == NOT_FOUND
    assert mt5.symbol_select("GER40") is True
    info = mt5.symbol_info("GER40")
    assert info is not None and info.select is True and info.visible is True
    tick = mt5.symbol_info_tick("GER40")
    assert isinstance(tick, Tick)
    assert int(T0 * 1000) - 60_000 < tick.time_msc <= int(T0 * 1000)  # its last tick by now
    assert mt5.symbol_select("GER40", 0) is True  # enable is read by truthiness
    assert mt5.symbol_info("GER40") is None
    assert mt5.symbol_info_tick("GER40") is None
    assert mt5.symbol_select("NOPE") is False
    assert mt5.last_error() == NOT_FOUND


def test_a_symbol_argument_of_the_wrong_type_is_an_invalid_unnamed_argument(
    mt5: SimTerminal,
) -> None:
    assert mt5.symbol_info(1) is None  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, "Invalid 1st unnamed argument")
    assert mt5.order_calc_margin(0, "EURUSD", "1", 1.1) is None  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, "Invalid 3rd unnamed argument")


def test_calc_functions_refuse_an_order_type_they_cannot_price(mt5: SimTerminal) -> None:
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_CLOSE_BY, "EURUSD", 1.0, 1.1) is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY_LIMIT, "EURUSD", 1.0, 1.1, 1.2) is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_SELL_LIMIT, "EURUSD", 1, 1) == 1000.0


# -- order_send / order_check: the binding's own checks (docs/MT5_API.md section 3) -------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"sl": 0}, 'Invalid "sl" argument'),  # an int, even 0, is not a float
        ({"tp": None}, 'Invalid "tp" argument'),
        ({"volume": 1}, 'Invalid "volume" argument'),
        ({"magic": 1.0}, 'Invalid "magic" argument'),  # a float is not an int
        ({"deviation": "10"}, 'Invalid "deviation" argument'),
        ({"comment": "x" * 30}, 'Invalid "comment" argument'),
        ({"comment": "\N{GRINNING FACE}" * 15}, 'Invalid "comment" argument'),  # 30 UTF-16 units
        ({"symbol": "E" * 30}, 'Invalid "symbol" argument'),
        ({"symbol": None}, 'Invalid "symbol" argument'),
    ],
)
def test_order_send_argument_checks(mt5: SimTerminal, changes: dict[str, Any], error: str) -> None:
    assert mt5.order_send(buy_request(mt5, **changes)) is None
    assert mt5.last_error() == (-2, error)
    assert mt5.order_check(buy_request(mt5, **changes)) is None
    assert mt5.last_error() == (-2, error)
    assert mt5.positions_total() == 0


def test_order_send_accepts_what_the_binding_accepts(mt5: SimTerminal) -> None:
    class Price(float):  # a float subclass, as numpy.float64 is
        pass

    request = buy_request(mt5, comment="c" * 29, magic=True, typo_key=1)
    request["price"] = Price(request["price"])
    result = mt5.order_send(request)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    assert isinstance(result.request, TradeRequest)
    assert result.request.magic == 1
    assert result.request.comment == "c" * 29
    assert result.request.type_filling == mt5.ORDER_FILLING_FOK  # a missing key is 0: FOK
    assert (result.request.sl, result.request.position, result.request.stoplimit) == (0.0, 0, 0.0)


def test_order_send_takes_one_dict_or_keywords_never_both(mt5: SimTerminal) -> None:
    request = buy_request(mt5)
    assert mt5.order_send(request, comment="x") is None
    assert mt5.last_error() == UNNAMED
    assert mt5.order_send() is None
    assert mt5.last_error() == (-2, "Invalid arguments")
    assert mt5.order_send(request, request) is None
    assert mt5.last_error() == (-2, "Invalid number of arguments")
    result = mt5.order_send(**request)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE
    check = mt5.order_check(**request)
    assert check is not None and check.retcode == 0


def test_an_out_of_range_integer_is_a_system_error_as_in_the_binary(mt5: SimTerminal) -> None:
    with pytest.raises(SystemError) as raised:
        mt5.order_send(buy_request(mt5, magic=-1))
    assert isinstance(raised.value.__cause__, OverflowError)


def test_request_ids_increase(mt5: SimTerminal) -> None:
    results = [mt5.order_send(buy_request(mt5)) for _ in range(3)]
    ids = [result.request_id for result in results if result is not None]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]


# -- history call forms ----------------------------------------------------------------------


def test_history_call_forms(mt5: SimTerminal) -> None:
    result = mt5.order_send(buy_request(mt5))
    assert result is not None
    day = datetime.fromtimestamp(T0, UTC)
    deals = mt5.history_deals_get(day, T0 + 1) or ()
    assert [d.ticket for d in deals] == [result.deal - 1, result.deal]  # the deposit, the trade
    assert mt5.history_deals_total(T0 - 1, int(T0)) == 2
    assert mt5.history_orders_total(T0 + 1, T0 + 2) == 0
    assert [d.ticket for d in mt5.history_deals_get(ticket=result.order) or ()] == [result.deal]
    assert [o.ticket for o in mt5.history_orders_get(ticket=result.order) or ()] == [result.order]
    assert [d.ticket for d in mt5.history_deals_get(position=result.order) or ()] == [result.deal]
    assert mt5.history_deals_get(0, T0 + 1, group="*JPY*") == ()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((), "Invalid arguments"),
        ((0,), "Invalid number of arguments"),
        ((0, 1, 2), "Invalid number of arguments"),
        (("yesterday", T0), "Invalid 1st unnamed argument"),
        ((0, None), "Invalid 2nd unnamed argument"),
    ],
)
def test_history_get_argument_errors(mt5: SimTerminal, args: tuple[Any, ...], error: str) -> None:
    assert mt5.history_deals_get(*args) is None
    assert mt5.last_error() == (-2, error)
    assert mt5.history_orders_get(*args) is None
    assert mt5.last_error() == (-2, error)
